"""Integer-only int8 EmbBERT: quantizer, model blob and the numpy integer reference.

- `hil.quant.quantize`: fp32 checkpoint -> QuantModel -> blob (uses torch, lazily imported).
- `hil.quant.reference`: THE definition of the int8 model (numpy integers only, no torch):
  `forward(q, ids) -> int32 logits`; the C engine matches it bit for bit (docs/int8-spec.md).
- `hil.quant.blob`, `hil.quant.vocab`: the blob container and the tokenizer's tensors.
- `hil.quant.cli`: `hil quantize`.
"""
