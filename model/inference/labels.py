"""Project labels <-> a model's vocabulary: by name, case-insensitively, with configurable synonyms."""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence


class LabelMap:
    """Maps model class names to project labels.

    `synonyms` maps a project label to other names a model may use for it
    (e.g. {"pedestrian": ["person"]}). With no project labels, every model name maps to itself.
    """

    def __init__(self, project_labels: Sequence[str], synonyms: Mapping[str, Iterable[str]] | None = None):
        self.project_labels = list(project_labels)
        self._by_name: dict[str, str] = {}
        for label in self.project_labels:
            self._by_name.setdefault(label.lower(), label)
            for alias in (synonyms or {}).get(label, ()):
                self._by_name.setdefault(alias.lower(), label)
        self._synonyms = {label: list((synonyms or {}).get(label, ())) for label in self.project_labels}

    def to_project(self, model_name: str) -> str | None:
        if not self.project_labels:
            return model_name
        return self._by_name.get(model_name.lower())

    def prompts(self) -> list[tuple[str, str]]:
        """(text prompt, project label) pairs for open-vocabulary models: each label and its synonyms."""
        return [(text, label) for label in self.project_labels for text in [label, *self._synonyms[label]]]


def merge_synonyms(*sources: Mapping[str, Iterable[str]] | None) -> dict[str, list[str]]:
    """Synonym tables combined: a pipeline's own and a caller's (e.g. a labeling config's predicted_values)."""
    merged: dict[str, list[str]] = {}
    for source in sources:
        for label, names in (source or {}).items():
            merged.setdefault(label, [])
            merged[label] += [n for n in names if n not in merged[label]]
    return merged
