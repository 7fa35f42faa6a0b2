"""Integer-only int8 EmbBERT: quantizer, model blob and the numpy integer reference."""
