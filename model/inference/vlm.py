"""Grounding with a vision-language model through transformers (`AutoModelForImageTextToText` and
the processor's chat template): a prompt per family, greedy generation, the family's parser, and
a per-box score from the token log-probabilities of the text that box was written with."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
from PIL import Image

from openautoglm.converters import Box, Region
from openautoglm.model.errors import ModelError
from openautoglm.model.inference.device import half_precision_dtype, pick_device
from openautoglm.model.inference.interface import ProposerSpec
from openautoglm.model.inference.labels import LabelMap, merge_synonyms
from openautoglm.model.inference.vlm_parsers import PARSERS, ParsedBox

_QWEN_PROMPT = ('Locate every instance of these objects in the image: {labels}. Report them in JSON as '
                '[{{"bbox_2d": [x1, y1, x2, y2], "label": "<one of the names>"}}].')
PROMPTS = {
    "qwen2_5_vl": _QWEN_PROMPT,
    "qwen3_vl": _QWEN_PROMPT,
    "glm4v": ("Locate every instance of these objects in the image: {labels}. For each one write its name, then "
              "its box as <|begin_of_box|>[x1,y1,x2,y2]<|end_of_box|> with coordinates from 0 to 1000."),
}


class VlmProposer:
    def __init__(self, name: str, weights: str, device: str | None = None, max_new_tokens: int = 512,
                 prompt: str | None = None, synonyms: dict | None = None):
        try:
            import torch
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError as error:
            raise ModelError("transformers and torch are needed: pip install 'openautoglm[model]'") from error
        self.torch, self.device = torch, pick_device(device)
        try:
            self.processor = AutoProcessor.from_pretrained(weights)
            self.model = AutoModelForImageTextToText.from_pretrained(
                weights, dtype=half_precision_dtype(self.device)).to(self.device).eval()
        except (OSError, ValueError) as error:
            raise ModelError(f"cannot load VLM {weights!r}: {error}") from error
        self.family = self.model.config.model_type
        if self.family not in PARSERS or self.family not in PROMPTS:
            raise ModelError(f"VLM {weights!r}: no grounding parser for model type {self.family!r}")
        self.processor.tokenizer.padding_side = "left"  # batched generation continues every row at the end
        self.prompt = prompt or PROMPTS[self.family]
        self.max_new_tokens, self.synonyms = max_new_tokens, synonyms or {}
        revision = getattr(self.model.config, "_commit_hash", None) or self.family
        self.spec = ProposerSpec(name, str(revision)[:12], "vlm")

    def generate(self, images: Sequence[Image.Image],
                 labels: Sequence[str]) -> list[tuple[str, list[int], np.ndarray, dict]]:
        """The bare model: per image, (generated text, token ids, token log-probs, resized input size)."""
        images = [image.convert("RGB") for image in images]
        request = self.prompt.format(labels=", ".join(labels))
        messages = [[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": request}]}]] * len(images)
        texts = [self.processor.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in messages]
        inputs = self.processor(text=texts, images=images, padding=True, return_tensors="pt").to(self.device)
        with self.torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                         output_scores=True, return_dict_in_generate=True)
            logprobs = self.model.compute_transition_scores(output.sequences, output.scores, normalize_logits=True)
        prompt_length = inputs["input_ids"].shape[1]
        tokenizer = self.processor.tokenizer
        stop = {tokenizer.pad_token_id, *_as_list(self.model.generation_config.eos_token_id)}
        results = []
        for row, image in enumerate(images):
            ids = output.sequences[row, prompt_length:].tolist()
            length = next((i for i, t in enumerate(ids) if t in stop), len(ids))
            ids = ids[:length]
            text = tokenizer.decode(ids, skip_special_tokens=False)
            token_logprobs = logprobs[row, :length].float().cpu().numpy()
            results.append((text, ids, token_logprobs, self._input_size(inputs, row, image)))
        return results

    def _input_size(self, inputs, row: int, image: Image.Image) -> dict:
        grid = inputs.get("image_grid_thw")
        if grid is None:
            return {"width": image.width, "height": image.height}
        patch = self.processor.image_processor.patch_size
        _, height, width = grid[row].tolist()
        return {"width": width * patch, "height": height * patch}

    def propose(self, images: Sequence[Image.Image], labels: Sequence[str],
                synonyms: dict | None = None) -> list[list[Region]]:
        label_map = LabelMap(labels, merge_synonyms(self.synonyms, synonyms))
        prompts = [text for text, _ in label_map.prompts()]
        if not prompts:
            return [[] for _ in images]
        results = []
        for image, (text, ids, logprobs, size) in zip(images, self.generate(images, prompts)):
            extra = (size["width"], size["height"]) if self.family == "qwen2_5_vl" else ()
            boxes = PARSERS[self.family](text, prompts, image.width, image.height, *extra)
            offsets = _token_ends(self.processor.tokenizer, ids)
            results.append([self._region(found, logprobs, offsets, label_map, image) for found in boxes])
        return results

    def _region(self, found: ParsedBox, logprobs: np.ndarray, offsets: list[int], label_map: LabelMap,
                image: Image.Image) -> Region:
        tokens = box_tokens(found.span, offsets)
        mean_logprob = float(np.mean(logprobs[tokens])) if tokens else float("-inf")
        score = math.exp(mean_logprob) if tokens else 0.0
        x1, y1, x2, y2 = np.clip([found.x1, found.y1, found.x2, found.y2], 0,
                                 [image.width, image.height, image.width, image.height]).tolist()
        return Region(label_map.to_project(found.label) or found.label, box=Box(x1, y1, x2, y2),
                      score=float(np.clip(score, 0.0, 1.0)), source=self.spec.source)


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value] if value is not None else []


def _token_ends(tokenizer, ids: list[int]) -> list[int]:
    """Character offset where each generated token ends in the decoded text."""
    return [len(tokenizer.decode(ids[:k + 1], skip_special_tokens=False)) for k in range(len(ids))]


def box_tokens(span: tuple[int, int], token_ends: list[int]) -> list[int]:
    """Indices of the tokens that overlap the character span [start, end)."""
    start, end = span
    tokens, previous = [], 0
    for index, token_end in enumerate(token_ends):
        if token_end > start and previous < end:
            tokens.append(index)
        previous = token_end
    return tokens
