"""`openautoglm label-config`: the labelling setup a project needs for a pipeline, to paste in:
a Label Studio labelling config (boxes; brush masks with --masks; the smart tools of interactive
pre-annotation with --interactive), or CVAT's label JSON with the `confidence` attribute
declared on every label (CVAT drops attributes a label does not declare, and with them every
score). Labels are the pipeline's own classes, or --labels for an open-vocabulary pipeline."""

from __future__ import annotations

import argparse
import json
from xml.sax.saxutils import quoteattr

from openautoglm.model.errors import ModelError


def add_label_config(commands) -> None:
    command = commands.add_parser("label-config", help="print a Label Studio labelling config or CVAT labels for a "
                                                       "pipeline, to paste into a project")
    command.add_argument("--model", default="yolo", help="pipeline name or .yaml file (default: yolo)")
    command.add_argument("--labels", help="comma-separated labels (an open-vocabulary pipeline needs them; "
                                          "a closed-set one keeps those of its classes)")
    command.add_argument("--masks", action="store_true", help="also brush masks (pipelines with a segmenter)")
    command.add_argument("--interactive", action="store_true",
                         help="also the smart keypoint and rectangle tools of interactive pre-annotation")
    command.add_argument("--for", dest="target", choices=("label-studio", "cvat"), default="label-studio")
    command.set_defaults(run=run_label_config)


def run_label_config(args: argparse.Namespace) -> int:
    from openautoglm.model.inference.pipeline import Pipeline

    vocabulary = Pipeline.load(args.model, calibration=None).vocabulary
    print(label_config(chosen_labels(vocabulary, args.labels, args.model), args.target, args.masks, args.interactive))
    return 0


def chosen_labels(vocabulary: tuple[str, ...] | None, labels: str | None, model: str) -> list[str]:
    asked = [name.strip() for name in (labels or "").split(",") if name.strip()]
    if vocabulary is None:
        if not asked:
            raise ModelError(f"{model} is open-vocabulary: name the labels with --labels a,b,c")
        return list(dict.fromkeys(asked))
    if not asked:
        return list(vocabulary)
    known = {name.lower(): name for name in vocabulary}  # project labels match classes case-insensitively
    unknown = [name for name in asked if name.lower() not in known]
    if unknown:
        raise ModelError(f"{model} has no class {', '.join(map(repr, unknown))} (OPENAUTOGLM_SYNONYMS maps other "
                         f"names to classes); its classes: {', '.join(vocabulary)}")
    return list(dict.fromkeys(asked))


def label_config(labels: list[str], target: str = "label-studio", masks: bool = False,
                 interactive: bool = False) -> str:
    if target == "cvat":
        confidence = {"name": "confidence", "input_type": "text", "mutable": True, "values": [""]}
        return json.dumps([{"name": name, "attributes": [confidence]} for name in labels], indent=1)
    options = "".join(f"\n    <Label value={quoteattr(name)}/>" for name in labels)
    smart = ' smart="true"' if interactive else ""
    controls = [f'  <RectangleLabels name="label" toName="image"{smart}>{options}\n  </RectangleLabels>']
    if masks:
        controls.append(f'  <BrushLabels name="mask" toName="image">{options}\n  </BrushLabels>')
    if interactive:
        controls.append(f'  <KeyPointLabels name="click" toName="image" smart="true" smartOnly="true">{options}\n'
                        "  </KeyPointLabels>")
    return '<View>\n  <Image name="image" value="$image" zoom="true"/>\n' + "\n".join(controls) + "\n</View>"
