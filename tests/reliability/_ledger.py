"""What the service acknowledged, as a client saw it: the reference a crash test checks against.

Every write a client sends is recorded only once its 2xx came back. A request cut short (the
server was killed under it) leaves its identity *unsure*: the write may or may not have been
committed, and the check afterwards only asks that whatever is there is whole.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class Ledger:
    faces: dict[str, dict[str, int]] = field(default_factory=dict)  # identity → face → crop
    deleted: set[str] = field(default_factory=set)
    unsure: set[str] = field(default_factory=set)
    acks: int = 0
    cut: int = 0  # requests cut short since the last check
    lock: threading.Lock = field(default_factory=threading.Lock)

    def created(self, identity: str) -> None:
        with self.lock:
            self.faces[identity] = {}
            self.acks += 1

    def added(self, identity: str, face: str, crop: int) -> None:
        with self.lock:
            self.faces[identity][face] = crop
            self.acks += 1

    def face_deleted(self, identity: str, face: str) -> None:
        with self.lock:
            self.faces[identity].pop(face, None)
            self.acks += 1

    def identity_deleted(self, identity: str) -> None:
        with self.lock:
            self.faces.pop(identity, None)
            self.deleted.add(identity)
            self.acks += 1

    def cut_short(self, identity: str | None) -> None:
        with self.lock:
            self.cut += 1
            if identity is not None:
                self.unsure.add(identity)

    def live_faces(self) -> int:
        with self.lock:
            return sum(len(f) for f in self.faces.values())

    def single_faced(self) -> dict[str, int]:
        """Identities with one face, and its crop: a search with that crop must find them."""
        with self.lock:
            return {
                i: next(iter(f.values()))
                for i, f in self.faces.items()
                if len(f) == 1 and i not in self.unsure
            }
