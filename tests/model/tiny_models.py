"""Tiny randomly initialised transformers models, built from a config and saved with
save_pretrained, so the real loading and inference code runs offline (../shared/TINY_MODELS.md).
Their outputs are meaningless: tests check shapes, ranges, formats and batch-equals-loop."""

from __future__ import annotations

import json
from pathlib import Path


def _byte_symbols() -> list[str]:
    """GPT-2's byte-to-unicode table: 256 printable stand-ins for the 256 byte values."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"),
                                                                                                       ord("ÿ") + 1))
    codes, extra = printable[:], 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def _seed() -> None:
    import torch

    torch.manual_seed(0)  # the same random weights on every run, so the tests are deterministic


def owlv2(directory: Path) -> Path:
    _seed()
    from transformers import CLIPTokenizer, Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    directory.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for symbol in _byte_symbols():
        vocab.setdefault(symbol, len(vocab))
    for symbol in _byte_symbols():
        vocab.setdefault(symbol + "</w>", len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"), pad_token="!")
    ids = tokenizer.convert_tokens_to_ids
    config = Owlv2Config(
        projection_dim=32,
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=16, bos_token_id=ids("<|startoftext|>"),
                         eos_token_id=ids("<|endoftext|>"), pad_token_id=ids("!")),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           image_size=128, patch_size=16),
    )
    Owlv2ForObjectDetection(config).save_pretrained(directory)
    Owlv2Processor(Owlv2ImageProcessor(size={"height": 128, "width": 128}), tokenizer).save_pretrained(directory)
    return directory


def grounding_dino(directory: Path) -> Path:
    _seed()
    from transformers import (
        BertConfig,
        BertTokenizer,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    directory.mkdir(parents=True, exist_ok=True)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "cat", "dog", "bus", "person", "car"]
    words += list(letters) + ["##" + c for c in letters]
    (directory / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = BertTokenizer(str(directory / "vocab.txt"))
    backbone = SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                          window_size=4, out_features=["stage2", "stage3", "stage4"])
    text = BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64)
    config = GroundingDinoConfig(backbone_config=backbone, text_config=text, d_model=32, encoder_layers=1,
                                 decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32, encoder_attention_heads=2,
                                 decoder_attention_heads=2, num_queries=20, num_feature_levels=4, encoder_n_points=2,
                                 decoder_n_points=2)
    GroundingDinoForObjectDetection(config).save_pretrained(directory)
    image_processor = GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    GroundingDinoProcessor(image_processor, tokenizer).save_pretrained(directory)
    return directory


def sam(directory: Path) -> Path:
    _seed()
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    directory.mkdir(parents=True, exist_ok=True)
    config = SamConfig(
        vision_config=dict(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2,
                           image_size=256, patch_size=16, mlp_dim=64, global_attn_indexes=[1], window_size=4,
                           num_pos_feats=16),
        prompt_encoder_config=dict(hidden_size=32, image_size=256, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, mlp_dim=64,
                                 iou_head_hidden_dim=32),
    )
    SamModel(config).save_pretrained(directory)
    image_processor = SamImageProcessor(size={"longest_edge": 256}, pad_size={"height": 256, "width": 256})
    SamProcessor(image_processor).save_pretrained(directory)
    return directory


QWEN_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|image_pad|>", "<|video_pad|>"]
GLM_SPECIAL = ["<|endoftext|>", "<|user|>", "<|assistant|>", "<|image|>", "<|begin_of_image|>", "<|end_of_image|>",
               "<|video|>", "<|begin_of_video|>", "<|end_of_video|>", "<|begin_of_box|>", "<|end_of_box|>"]
QWEN_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
GLM_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>\n{% if message['content'] is string %}"
    "{{ message['content'] }}{% else %}{% for part in message['content'] %}{% if part['type'] == 'image' %}"
    "<|begin_of_image|><|image|><|end_of_image|>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _byte_level_tokenizer(directory: Path, special: list[str]):
    from transformers import Qwen2Tokenizer

    vocab: dict[str, int] = {}
    for symbol in _byte_symbols():
        vocab.setdefault(symbol, len(vocab))
    (directory / "vocab.json").write_text(json.dumps(vocab))
    (directory / "merges.txt").write_text("#version: 0.2\n")
    return Qwen2Tokenizer(str(directory / "vocab.json"), str(directory / "merges.txt"),
                          additional_special_tokens=special, pad_token="<|endoftext|>")


def _text_config(tokenizer, eos, **extra) -> dict:
    ids = tokenizer.convert_tokens_to_ids
    return dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, bos_token_id=ids("<|endoftext|>"), eos_token_id=eos,
                pad_token_id=ids("<|endoftext|>"), **extra)


def qwen2_5_vl(directory: Path) -> Path:
    from transformers import (
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    _seed()
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _byte_level_tokenizer(directory, QWEN_SPECIAL)
    ids = tokenizer.convert_tokens_to_ids
    rope = {"rope_type": "default", "rope_theta": 1e4, "mrope_section": [1, 1, 2]}
    config = Qwen2_5_VLConfig(
        text_config=_text_config(tokenizer, ids("<|im_end|>"), rope_parameters=rope),
        vision_config=dict(depth=2, hidden_size=32, num_heads=4, out_hidden_size=32, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, window_size=56, fullatt_block_indexes=[1],
                           intermediate_size=64),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(directory)
    images = Qwen2VLImageProcessor(size={"shortest_edge": 56 * 56, "longest_edge": 112 * 112}, patch_size=14,
                                   merge_size=2)
    Qwen2_5_VLProcessor(image_processor=images, tokenizer=tokenizer, video_processor=Qwen2VLVideoProcessor(),
                        chat_template=QWEN_TEMPLATE).save_pretrained(directory)
    return directory


def qwen3_vl(directory: Path) -> Path:
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )

    _seed()
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _byte_level_tokenizer(directory, QWEN_SPECIAL)
    ids = tokenizer.convert_tokens_to_ids
    rope = {"rope_type": "default", "rope_theta": 1e4, "mrope_section": [1, 1, 2], "mrope_interleaved": True}
    config = Qwen3VLConfig(
        text_config=_text_config(tokenizer, ids("<|im_end|>"), head_dim=8, rope_parameters=rope),
        vision_config=dict(depth=2, hidden_size=32, num_heads=4, out_hidden_size=32, patch_size=16,
                           spatial_merge_size=2, temporal_patch_size=2, intermediate_size=64,
                           num_position_embeddings=64, deepstack_visual_indexes=[1]),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
    )
    Qwen3VLForConditionalGeneration(config).save_pretrained(directory)
    images = Qwen2VLImageProcessor(size={"shortest_edge": 64 * 64, "longest_edge": 128 * 128}, patch_size=16,
                                   merge_size=2)
    Qwen3VLProcessor(image_processor=images, tokenizer=tokenizer, video_processor=Qwen3VLVideoProcessor(),
                     chat_template=QWEN_TEMPLATE).save_pretrained(directory)
    return directory


def glm4v(directory: Path) -> Path:
    from transformers import (
        Glm4vConfig,
        Glm4vForConditionalGeneration,
        Glm4vImageProcessor,
        Glm4vProcessor,
        Glm4vVideoProcessor,
    )

    _seed()
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = _byte_level_tokenizer(directory, GLM_SPECIAL)
    ids = tokenizer.convert_tokens_to_ids
    rope = {"rope_type": "default", "rope_theta": 1e4, "mrope_section": [1, 1, 2]}
    config = Glm4vConfig(
        text_config=_text_config(tokenizer, [ids("<|endoftext|>"), ids("<|user|>")], partial_rotary_factor=1.0,
                                 rope_parameters=rope),
        vision_config=dict(depth=2, hidden_size=32, num_heads=4, out_hidden_size=32, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2, image_size=56, intermediate_size=64),
        image_token_id=ids("<|image|>"), video_token_id=ids("<|video|>"),
        image_start_token_id=ids("<|begin_of_image|>"), image_end_token_id=ids("<|end_of_image|>"),
        video_start_token_id=ids("<|begin_of_video|>"), video_end_token_id=ids("<|end_of_video|>"),
    )
    Glm4vForConditionalGeneration(config).save_pretrained(directory)
    images = Glm4vImageProcessor(size={"shortest_edge": 56 * 56, "longest_edge": 112 * 112}, patch_size=14,
                                 merge_size=2)
    Glm4vProcessor(image_processor=images, tokenizer=tokenizer, video_processor=Glm4vVideoProcessor(),
                   chat_template=GLM_TEMPLATE).save_pretrained(directory)
    return directory


def sam2(directory: Path) -> Path:
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2Model,
        Sam2Processor,
        Sam2VisionConfig,
    )

    _seed()
    directory.mkdir(parents=True, exist_ok=True)
    # the global-attention block must not be a stage's first (query-pooling) block
    backbone = Sam2HieraDetConfig(hidden_size=16, num_attention_heads=1, image_size=[256, 256],
                                  blocks_per_stage=[1, 1, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
                                  num_attention_heads_per_stage=[1, 1, 2, 2], window_size_per_stage=[8, 4, 4, 4],
                                  global_attention_blocks=[3], window_positional_embedding_background_size=[4, 4])
    vision = Sam2VisionConfig(backbone_config=backbone, backbone_channel_list=[128, 64, 32, 16],
                              backbone_feature_sizes=[[64, 64], [32, 32], [16, 16]], fpn_hidden_size=32)
    config = Sam2Config(vision_config=vision,
                        prompt_encoder_config=dict(hidden_size=32, image_size=256, patch_size=16,
                                                   mask_input_channels=4),
                        mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
                                                 iou_head_hidden_dim=32))
    Sam2Model(config).save_pretrained(directory)
    Sam2Processor(Sam2ImageProcessor(size={"height": 256, "width": 256})).save_pretrained(directory)
    return directory


def mobile_sam(path: Path) -> Path:
    """A randomly initialised MobileSAM saved as ultralytics loads it. Its IoU head is biased
    positive so ultralytics' score filter keeps the random masks."""
    import torch
    from ultralytics.models.sam.build import build_mobile_sam

    _seed()
    model = build_mobile_sam(None)
    model.mask_decoder.iou_prediction_head.layers[-1].bias.data.fill_(3.0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path
