/* pretok.c - BPE pre-tokenizers: the regex lists of llama.cpp's
 * llm_tokenizer_bpe per tokenizer.ggml.pre, run with PCRE2.
 *
 * Semantics (llama.cpp unicode_regex_split): the text starts as one
 * fragment; each regex in turn splits every fragment into its matches AND
 * the unmatched gaps between them (gaps stay as words). A regex sees only
 * its fragment, so lookaheads and `$` stop at the fragment end.
 * `\s`/`\S` are rewritten to llama.cpp's whitespace set (ASCII \t-\r, space,
 * U+0085, U+00A0, U+1680, U+2000-200A, U+2028, U+2029, U+202F, U+205F,
 * U+3000) because PCRE2's \s differs from it on U+0085. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "base/util.h"
#include "tokenizer/tok_internal.h"

#define MAX_RE 8

struct TokPre {
    pcre2_code *re[MAX_RE]; /* NULL: the trailing-whitespace regex, done by hand */
    int n_re;
};

/* "\\s+$" matches only a fragment's trailing whitespace run; a regex engine
 * would rescan each whitespace run from every start position (quadratic on
 * long runs), so it is implemented directly. */
#define RE_TRAILING_WS "\\s+$"

static int is_ws_cpt(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Start of the trailing whitespace run of s[0..n) (n when none). */
static size_t trailing_ws_start(const char *s, size_t n) {
    size_t ws = n, i = 0;
    while (i < n) {
        size_t adv;
        uint32_t c = utf8_decode((const unsigned char *)s + i, n - i, &adv);
        if (is_ws_cpt(c)) {
            if (ws == n) ws = i;
        } else {
            ws = n;
        }
        i += adv;
    }
    return ws;
}

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_CONTR "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3                                                                                  \
    RE_CONTR                                                                                       \
    "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"     \
    "\\s+(?!\\S)|\\s+"
#define RE_QWEN2                                                                                   \
    RE_CONTR "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|" \
             "\\s+(?!\\S)|\\s+"

typedef struct PreDef {
    const char *names; /* '|'-separated tokenizer.ggml.pre values */
    const char *re[MAX_RE];
} PreDef;

static const PreDef PRE_DEFS[] = {
    {"default", {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]", NULL}},
    {"llama3|llama-v3|llama-bpe|falcon3|falcon-h1|pixtral|midm-2.0|lfm2|dbrx|smaug-bpe|glm4|"
     "chatglm-bpe",
     {RE_LLAMA3, NULL}},
    {"deepseek-llm",
     {"[\\r\\n]",
      "\\s?[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}\\x{1BC}-\\x{1BF}\\x{1C4}-"
      "\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}"
      "\\x{388}-\\x{38A}\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}\\x{48A}-\\x{"
      "52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{"
      "1CBA}\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}\\x{1D79}-\\x{1D9A}\\x{1E00}-"
      "\\x{1F15}\\x{1F18}-\\x{1F1D}\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{"
      "1F59}\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}\\x{1FB6}-\\x{1FBC}\\x{1FBE}"
      "\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{"
      "1FEC}\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}\\x{210A}-\\x{2113}\\x{2115}"
      "\\x{2119}-\\x{211D}\\x{2124}\\x{2126}\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{"
      "2139}\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}\\x{2C00}-\\x{2C7B}"
      "\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{"
      "A69B}\\x{A722}-\\x{A76F}\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}\\x{FB00}-"
      "\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{"
      "104B0}-\\x{104D3}\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}\\x{118A0}-"
      "\\x{118DF}\\x{1E900}-\\x{1E943}]+",
      "\\s?[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+",
      "\\s+$", "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}+", NULL}},
    {"deepseek-coder",
     {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+",
      "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", "\\p{N}", NULL}},
    {"deepseek-v3",
     {"\\p{N}{1,3}", "[\\x{4E00}-\\x{9FA5}\\x{3040}-\\x{309F}\\x{30A0}-\\x{30FF}]+",
      "[!\"#$%&'()*+,\\-./"
      ":;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
      " ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      NULL}},
    {"falcon", {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]", NULL}},
    {"starcoder|refact|command-r|smollm|codeshell|exaone|minerva-7b", {"\\p{N}", RE_GPT2, NULL}},
    {"gpt-2|mpt|olmo|jais|phi-2|jina-es|jina-de|gigachat|jina-v2-es|jina-v2-de|a.x-4.0|mellum|"
     "modern-bert|exaone4|jina-v1-en|jina-v2-code|roberta-bpe|trillion|granite-docling",
     {RE_GPT2, NULL}},
    {"qwen2|deepseek-r1-qwen|megrez|stablelm2|hunyuan|kormo", {RE_QWEN2, NULL}},
    {"poro-chat|bloom|gpt3-finnish", {" ?[^(\\s|.,!?…\\x{3002}，、।۔،)]+", NULL}},
    {"viking", {" ?[^(\\s|.,!?…\\x{3002}，、।۔،)]+", "\\p{N}", NULL}},
    {"tekken",
     {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+|[^\\r\\n\\p{L}\\p{N}]?("
      "("
      "?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*|\\p{N}| "
      "?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|"
      "\\s+(?!\\S)|\\s+",
      NULL}},
    {"gpt-4o|llama4",
     {"[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+" RE_CONTR
      "?|[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*" RE_CONTR
      "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
      NULL}},
};

#define WS_CLASS                                                                                   \
    "\\t-\\r "                                                                                     \
    "\\x{85}\\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}"

/* Replaces \s and \S by llama.cpp's whitespace set. Returns malloc'd. */
static char *rewrite_ws(const char *re) {
    size_t cap = strlen(re) * 8 + 64, n = 0;
    char *out = xmalloc(cap);
    int in_class = 0;
#define APPEND(str)                                                                                \
    do {                                                                                           \
        size_t l_ = strlen(str);                                                                   \
        memcpy(out + n, str, l_);                                                                  \
        n += l_;                                                                                   \
    } while (0)
    for (const char *p = re; *p; p++) {
        if (*p == '\\' && p[1]) {
            if (p[1] == 's') {
                if (in_class)
                    APPEND(WS_CLASS);
                else
                    APPEND("[" WS_CLASS "]");
            } else if (p[1] == 'S' && !in_class) {
                APPEND("[^" WS_CLASS "]");
            } else {
                out[n++] = p[0];
                out[n++] = p[1];
            }
            p++;
            continue;
        }
        if (*p == '[' && !in_class)
            in_class = 1;
        else if (*p == ']' && in_class)
            in_class = 0;
        out[n++] = *p;
    }
#undef APPEND
    out[n] = 0;
    return out;
}

static int name_in_list(const char *list, const char *name) {
    size_t nl = strlen(name);
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == nl && !memcmp(p, name, l)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

void tokpre_free(TokPre *p) {
    if (!p) return;
    for (int i = 0; i < p->n_re; i++)
        if (p->re[i]) pcre2_code_free(p->re[i]);
    free(p);
}

TokPre *tokpre_new(const char *pre_name, Err *e) {
    if (!pre_name || !*pre_name) pre_name = "default";
    const PreDef *def = NULL;
    for (size_t i = 0; i < sizeof PRE_DEFS / sizeof PRE_DEFS[0]; i++)
        if (name_in_list(PRE_DEFS[i].names, pre_name)) def = &PRE_DEFS[i];
    if (!def) {
        err_set(e, "tokenizer.ggml.pre: unknown pre-tokenizer type '%s'", pre_name);
        return NULL;
    }
    TokPre *p = xcalloc(1, sizeof *p);
    for (int i = 0; i < MAX_RE && def->re[i]; i++) {
        if (!strcmp(def->re[i], RE_TRAILING_WS)) {
            p->re[p->n_re++] = NULL;
            continue;
        }
        char *pat = rewrite_ws(def->re[i]);
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *c = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                                      PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
        if (!c) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(ec, msg, sizeof msg);
            err_set(e, "pre-tokenizer '%s': regex %d: %s at offset %zu", pre_name, i,
                    (const char *)msg, (size_t)eo);
            free(pat);
            tokpre_free(p);
            return NULL;
        }
        free(pat);
        pcre2_jit_compile(c, PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
        p->re[p->n_re++] = c;
    }
    return p;
}

typedef struct Frag {
    size_t off, len;
} Frag;

typedef struct FragVec {
    Frag *v;
    size_t n, cap;
} FragVec;

static void frag_push(FragVec *f, size_t off, size_t len) {
    if (len == 0) return;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->v = xrealloc(f->v, f->cap * sizeof *f->v);
    }
    f->v[f->n].off = off;
    f->v[f->n].len = len;
    f->n++;
}

int tokpre_split(const TokPre *p, const char *text, size_t len,
                 int (*fn)(const char *w, size_t n, void *ud), void *ud, Err *e) {
    FragVec cur = {0}, next = {0};
    frag_push(&cur, 0, len);
    int rc_all = 0;
    for (int r = 0; r < p->n_re && rc_all == 0; r++) {
        next.n = 0;
        if (!p->re[r]) {
            for (size_t f = 0; f < cur.n; f++) {
                size_t ws = trailing_ws_start(text + cur.v[f].off, cur.v[f].len);
                frag_push(&next, cur.v[f].off, ws);
                frag_push(&next, cur.v[f].off + ws, cur.v[f].len - ws);
            }
            FragVec tmp = cur;
            cur = next;
            next = tmp;
            continue;
        }
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(p->re[r], NULL);
        for (size_t f = 0; f < cur.n; f++) {
            const char *s = text + cur.v[f].off;
            size_t flen = cur.v[f].len, pos = 0, gap = 0;
            while (pos < flen) {
                int rc =
                    pcre2_match(p->re[r], (PCRE2_SPTR)s, flen, pos, PCRE2_NO_UTF_CHECK, md, NULL);
                if (rc == PCRE2_ERROR_NOMATCH) break;
                if (rc < 0) {
                    PCRE2_UCHAR msg[128];
                    pcre2_get_error_message(rc, msg, sizeof msg);
                    err_set(e, "pre-tokenizer: regex match failed: %s", (const char *)msg);
                    rc_all = -1;
                    break;
                }
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                size_t ms = ov[0], me = ov[1];
                if (me == ms) { /* empty match: step one character */
                    pos = ms + utf8_len_lead((unsigned char)s[ms]);
                    continue;
                }
                if (ms > gap) frag_push(&next, cur.v[f].off + gap, ms - gap);
                frag_push(&next, cur.v[f].off + ms, me - ms);
                gap = pos = me;
            }
            if (rc_all) break;
            if (gap < flen) frag_push(&next, cur.v[f].off + gap, flen - gap);
        }
        pcre2_match_data_free(md);
        FragVec tmp = cur;
        cur = next;
        next = tmp;
    }
    for (size_t f = 0; f < cur.n && rc_all == 0; f++)
        if (fn(text + cur.v[f].off, cur.v[f].len, ud)) rc_all = -1;
    free(cur.v);
    free(next.v);
    return rc_all;
}
