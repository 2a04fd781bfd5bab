/* tokenizer.h - tokenizers read from GGUF metadata.
 *
 * tokenizer.ggml.model:
 *   "llama": SentencePiece BPE (scores, U+2581 for spaces, <0xNN> byte
 *            fallback, add-dummy-prefix per tokenizer.ggml.add_space_prefix).
 *   "gpt2":  byte-level BPE with tokenizer.ggml.merges and a pre-tokenizer
 *            regex chosen by tokenizer.ggml.pre.
 * Must reproduce llama.cpp on its test vectors (tests/unit/test_tokenizer.c).
 *
 * Ownership: the Tokenizer copies what it needs; the GgufFile may be closed
 * after tok_load. Thread-safe for concurrent encode/decode after load. */
#ifndef M40_TOKENIZER_H
#define M40_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "gguf/gguf.h"

typedef struct Tokenizer Tokenizer;

Tokenizer *tok_load(const GgufFile *f, Err *e);
void tok_free(Tokenizer *t);

int tok_n_vocab(const Tokenizer *t);
int32_t tok_bos(const Tokenizer *t); /* -1 if none */
int32_t tok_eos(const Tokenizer *t); /* -1 if none */
int tok_add_bos(const Tokenizer *t); /* tokenizer.ggml.add_bos_token (default per model type) */
/* End-of-generation token (EOS, EOT, <|im_end|>, <|eot_id|>, ...). */
int tok_is_eog(const Tokenizer *t, int32_t id);
/* Looks up a token by its exact text; -1 when absent. */
int32_t tok_find(const Tokenizer *t, const char *text);
/* Raw vocabulary entry (as stored in the GGUF). */
const char *tok_piece(const Tokenizer *t, int32_t id);

/* Encodes UTF-8 text. add_bos: prepend BOS (when the vocab has one).
 * parse_special: recognize control/special tokens written in the text
 * (e.g. "<|im_start|>"); otherwise they are tokenized as plain text.
 * Writes up to `cap` ids; returns the total count needed (may exceed cap:
 * call again with a larger buffer), or -1 on error (invalid UTF-8 in the
 * input is an error naming the byte offset). */
int tok_encode(const Tokenizer *t, const char *text, size_t len, int add_bos, int parse_special,
               int32_t *ids, int cap, Err *e);

/* Streaming detokenizer: feed ids one at a time, get complete UTF-8 out.
 * Never emits half a UTF-8 sequence: bytes of an incomplete character are
 * held until the rest arrives (or tok_decoder_flush). Special/control tokens
 * (BOS, EOS, ...) produce no text unless `render_special`. */
typedef struct TokDecoder {
    const Tokenizer *t;
    int render_special;
    int n_tokens; /* tokens fed so far (SPM strips the leading space of the first) */
    unsigned char pending[8];
    int n_pending;
    int lstrip; /* SPM: strip one leading space from the first text token
                   (after a leading BOS), as llama.cpp's detokenize */
} TokDecoder;

void tok_decoder_init(TokDecoder *d, const Tokenizer *t, int render_special);
/* Appends text for `id` to out (NUL-terminated, at most cap-1 bytes);
 * returns the number of bytes written. cap >= 256 is always enough. */
size_t tok_decoder_feed(TokDecoder *d, int32_t id, char *out, size_t cap);
/* Emits held bytes (as U+FFFD for an incomplete sequence). */
size_t tok_decoder_flush(TokDecoder *d, char *out, size_t cap);

/* Decodes a whole id list into a malloc'd NUL-terminated string. */
char *tok_decode_all(const Tokenizer *t, const int32_t *ids, int n, int render_special);

#endif
