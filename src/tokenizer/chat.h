/* chat.h - chat templates. The GGUF's tokenizer.chat_template (Jinja) is not
 * executed; it is matched against the common template families, which are
 * rendered by hand-written code. --chat-template NAME forces one. */
#ifndef M40_CHAT_H
#define M40_CHAT_H

#include "base/err.h"

typedef enum ChatTemplate {
    CHAT_TMPL_UNKNOWN = -1,
    CHAT_TMPL_CHATML = 0, /* <|im_start|>role\n...<|im_end|>\n (Qwen, SmolLM) */
    CHAT_TMPL_LLAMA2,     /* [INST] <<SYS>>...<</SYS>> ... [/INST] */
    CHAT_TMPL_LLAMA3,     /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
    CHAT_TMPL_MISTRAL,    /* [INST] ... [/INST] without <<SYS>> */
    CHAT_TMPL_ZEPHYR,     /* <|user|>\n...</s>\n<|assistant|>\n */
    CHAT_TMPL_GEMMA,      /* <start_of_turn>user\n...<end_of_turn>\n<start_of_turn>model\n */
    CHAT_TMPL_PHI3,       /* <|user|>\n...<|end|>\n<|assistant|>\n */
    CHAT_TMPL_COUNT
} ChatTemplate;

typedef struct ChatMessage {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} ChatMessage;

const char *chat_template_name(ChatTemplate t);
/* By name ("chatml", "llama2", ...); CHAT_TMPL_UNKNOWN if none. */
ChatTemplate chat_template_from_name(const char *name);
/* Detects the family from a Jinja template string (NULL -> UNKNOWN). */
ChatTemplate chat_template_detect(const char *jinja);

/* Renders messages into a malloc'd prompt string (special tokens written as
 * text: encode it with parse_special = 1). bos_text: the model's BOS token
 * text for templates that include it (may be NULL). add_assistant: append the
 * assistant turn header. Returns NULL with e set on a bad role. */
char *chat_render(ChatTemplate t, const ChatMessage *msgs, int n, int add_assistant,
                  const char *bos_text, Err *e);

#endif
