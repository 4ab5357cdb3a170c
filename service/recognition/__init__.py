"""Recognition: the use cases between the routes (or a command) and the pipeline and gallery.

No HTTP here. The face pipeline (:mod:`.pipeline`), the faces of a request's images
(:mod:`.faces`), and bulk enrolment from folders (:mod:`.folder_enrolment`).
"""
