"""Recognition: the use cases between the routes (or a command) and the pipeline and gallery.

No HTTP here (docs/architecture.md, floor 2):

- :mod:`.usecases`: ``Recognition`` (embed, identify, verify, add faces) and its results;
- :mod:`.pipeline`: the face pipeline, decode → detect → align → embed (sync and batched);
- :mod:`.faces`: the faces of a request's images, all or nothing;
- :mod:`.choice`: which face counts (verify's choice, the one enrolment rule);
- :mod:`.matching`: the match rule (cosine ≥ threshold) and the threshold in effect;
- :mod:`.search`: gallery searches batched across requests;
- :mod:`.changes`: identity and face changes, each audited;
- :mod:`.folder_enrolment`: ``facerec enrol``'s bulk, resumable enrolment from folders.
"""
