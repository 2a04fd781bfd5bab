/* chat.c - chat template families rendered by hand (outputs follow
 * llama.cpp's llm_chat_apply_template) and detection from the GGUF's Jinja
 * template by distinctive markers (as llama.cpp's llm_chat_detect_template). */
#include <ctype.h>
#include <string.h>

#include "base/util.h"
#include "tokenizer/chat.h"

static const char *const NAMES[CHAT_TMPL_COUNT] = {"chatml", "llama2", "llama3", "mistral",
                                                   "zephyr", "gemma",  "phi3"};

const char *chat_template_name(ChatTemplate t) {
    return t >= 0 && t < CHAT_TMPL_COUNT ? NAMES[t] : "unknown";
}

ChatTemplate chat_template_from_name(const char *name) {
    if (!name) return CHAT_TMPL_UNKNOWN;
    for (int i = 0; i < CHAT_TMPL_COUNT; i++)
        if (!strcmp(name, NAMES[i])) return (ChatTemplate)i;
    static const struct {
        const char *alias;
        ChatTemplate t;
    } ALIASES[] = {{"llama-2", CHAT_TMPL_LLAMA2},     {"llama-3", CHAT_TMPL_LLAMA3},
                   {"mistral-v1", CHAT_TMPL_MISTRAL}, {"phi-3", CHAT_TMPL_PHI3},
                   {"phi_3", CHAT_TMPL_PHI3},         {"llama2-sys", CHAT_TMPL_LLAMA2}};
    for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++)
        if (!strcmp(name, ALIASES[i].alias)) return ALIASES[i].t;
    return CHAT_TMPL_UNKNOWN;
}

ChatTemplate chat_template_detect(const char *j) {
    if (!j) return CHAT_TMPL_UNKNOWN;
    ChatTemplate byname = chat_template_from_name(j);
    if (byname != CHAT_TMPL_UNKNOWN) return byname;
#define HAS(s) (strstr(j, s) != NULL)
    if (HAS("<|im_start|>")) return CHAT_TMPL_CHATML;
    if (!strncmp(j, "mistral", 7) || HAS("[INST]")) {
        /* llama.cpp: <<SYS>> marks the llama2 family; templates without it
         * (official mistral v1/v3 and pre-v1) are the [INST]-only family. */
        if (HAS("<<SYS>>")) return CHAT_TMPL_LLAMA2;
        return CHAT_TMPL_MISTRAL;
    }
    if (HAS("<|assistant|>") && HAS("<|end|>")) return CHAT_TMPL_PHI3;
    if (HAS("<|user|>") && (HAS("<|endoftext|>") || HAS("eos_token") || HAS("</s>")))
        return CHAT_TMPL_ZEPHYR;
    if (HAS("<start_of_turn>")) return CHAT_TMPL_GEMMA;
    if (HAS("<|start_header_id|>") && HAS("<|end_header_id|>")) return CHAT_TMPL_LLAMA3;
#undef HAS
    return CHAT_TMPL_UNKNOWN;
}

/* ---- rendering ---- */

typedef struct Sb {
    char *p;
    size_t n, cap;
} Sb;

static void sb_putn(Sb *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2 + 64;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_put(Sb *b, const char *s) { sb_putn(b, s, strlen(s)); }

/* Appends s without leading/trailing whitespace (llama.cpp trim()). */
static void sb_put_trim(Sb *b, const char *s) {
    size_t n = strlen(s);
    while (n && isspace((unsigned char)*s)) s++, n--;
    while (n && isspace((unsigned char)s[n - 1])) n--;
    sb_putn(b, s, n);
}

char *chat_render(ChatTemplate t, const ChatMessage *msgs, int n, int add_assistant,
                  const char *bos_text, Err *e) {
    if (t < 0 || t >= CHAT_TMPL_COUNT) {
        err_set(e, "chat template: unknown template id %d", (int)t);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (!r || (strcmp(r, "system") && strcmp(r, "user") && strcmp(r, "assistant"))) {
            err_set(e, "chat message %d: unsupported role '%s' (system, user, assistant)", i,
                    r ? r : "(null)");
            return NULL;
        }
        if (!msgs[i].content) {
            err_set(e, "chat message %d: missing content", i);
            return NULL;
        }
    }
    Sb b = {0};
    sb_put(&b, "");
    switch (t) {
    case CHAT_TMPL_CHATML:
        for (int i = 0; i < n; i++) {
            sb_put(&b, "<|im_start|>");
            sb_put(&b, msgs[i].role);
            sb_put(&b, "\n");
            sb_put(&b, msgs[i].content);
            sb_put(&b, "<|im_end|>\n");
        }
        if (add_assistant) sb_put(&b, "<|im_start|>assistant\n");
        break;
    case CHAT_TMPL_LLAMA2: {
        /* llama.cpp llama2-sys (with bos_text: llama2-sys-bos, BOS before
         * each later [INST]) */
        int inside = 1;
        sb_put(&b, "[INST] ");
        for (int i = 0; i < n; i++) {
            const char *r = msgs[i].role;
            if (!inside) {
                inside = 1;
                if (bos_text) sb_put(&b, bos_text);
                sb_put(&b, "[INST] ");
            }
            if (!strcmp(r, "system")) {
                sb_put(&b, "<<SYS>>\n");
                sb_put(&b, msgs[i].content);
                sb_put(&b, "\n<</SYS>>\n\n");
            } else if (!strcmp(r, "user")) {
                sb_put(&b, msgs[i].content);
                sb_put(&b, " [/INST]");
            } else {
                sb_put(&b, msgs[i].content);
                sb_put(&b, "</s>");
                inside = 0;
            }
        }
        break;
    }
    case CHAT_TMPL_MISTRAL: {
        /* llama.cpp mistral-v1 */
        int inside = 0;
        for (int i = 0; i < n; i++) {
            const char *r = msgs[i].role;
            if (!inside) {
                sb_put(&b, " [INST] ");
                inside = 1;
            }
            if (!strcmp(r, "system")) {
                sb_put(&b, msgs[i].content);
                sb_put(&b, "\n\n");
            } else if (!strcmp(r, "user")) {
                sb_put(&b, msgs[i].content);
                sb_put(&b, " [/INST]");
            } else {
                sb_put(&b, " ");
                sb_put(&b, msgs[i].content);
                sb_put(&b, "</s>");
                inside = 0;
            }
        }
        break;
    }
    case CHAT_TMPL_LLAMA3:
        for (int i = 0; i < n; i++) {
            sb_put(&b, "<|start_header_id|>");
            sb_put(&b, msgs[i].role);
            sb_put(&b, "<|end_header_id|>\n\n");
            sb_put_trim(&b, msgs[i].content);
            sb_put(&b, "<|eot_id|>");
        }
        if (add_assistant) sb_put(&b, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case CHAT_TMPL_ZEPHYR:
        /* HuggingFaceH4/zephyr-7b-beta (eos_token "</s>"; llama.cpp's
         * built-in uses <|endoftext|> for stablelm-zephyr) */
        for (int i = 0; i < n; i++) {
            sb_put(&b, "<|");
            sb_put(&b, msgs[i].role);
            sb_put(&b, "|>\n");
            sb_put(&b, msgs[i].content);
            sb_put(&b, "</s>\n");
        }
        if (add_assistant) sb_put(&b, "<|assistant|>\n");
        break;
    case CHAT_TMPL_GEMMA: {
        Sb sys = {0};
        for (int i = 0; i < n; i++) {
            const char *r = msgs[i].role;
            if (!strcmp(r, "system")) {
                sb_put_trim(&sys, msgs[i].content);
                continue;
            }
            int model = !strcmp(r, "assistant");
            sb_put(&b, "<start_of_turn>");
            sb_put(&b, model ? "model" : r);
            sb_put(&b, "\n");
            if (sys.n && !model) {
                sb_putn(&b, sys.p, sys.n);
                sb_put(&b, "\n\n");
                sys.n = 0;
            }
            sb_put_trim(&b, msgs[i].content);
            sb_put(&b, "<end_of_turn>\n");
        }
        free(sys.p);
        if (add_assistant) sb_put(&b, "<start_of_turn>model\n");
        break;
    }
    case CHAT_TMPL_PHI3:
        for (int i = 0; i < n; i++) {
            sb_put(&b, "<|");
            sb_put(&b, msgs[i].role);
            sb_put(&b, "|>\n");
            sb_put(&b, msgs[i].content);
            sb_put(&b, "<|end|>\n");
        }
        if (add_assistant) sb_put(&b, "<|assistant|>\n");
        break;
    default:
        break;
    }
    return b.p;
}
