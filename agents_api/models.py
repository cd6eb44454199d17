from django.db import models


class GrantIndexGeneration(models.Model):
    """One row (id 1) whose number is set anew (at random) on every grant change, in the changing transaction: each web worker
    compares it with the number its in-memory grant index was filled under and starts afresh when it moved."""

    generation = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"grant index generation {self.generation}"
