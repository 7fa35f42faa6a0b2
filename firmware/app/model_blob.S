/*
 * model_blob.S - links the model blob (Makefile MODEL=) into the image, byte for byte.
 *
 * .incbin needs no Python or generated header; 8-byte alignment satisfies the blob reader
 * (tensor data sits at 8-aligned offsets from the start). EBQ_MODEL_FILE is a quoted path set by
 * the Makefile; with no MODEL the blob is empty and the firmware boots answering ERROR MODEL.
 */
#ifdef __ELF__
    .section .rodata.ebq_blob, "a"
#endif
    .balign 8
    .global ebq_blob_start
    .global ebq_blob_end
ebq_blob_start:
#ifdef EBQ_MODEL_FILE
    .incbin EBQ_MODEL_FILE
#endif
ebq_blob_end:
    .balign 8

#if defined(__ELF__) && defined(__linux__)
    .section .note.GNU-stack, "", %progbits
#endif
