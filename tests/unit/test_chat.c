/* test_chat.c - chat templates: rendered strings for llama.cpp's test
 * conversation (expected outputs from llama.cpp tests/test-chat-template.cpp,
 * legacy renderer), and family detection from real Jinja templates. */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokenizer/chat.h"

static const ChatMessage CONV[] = {
    {"system", "You are a helpful assistant"},
    {"user", "Hello"},
    {"assistant", "Hi there"},
    {"user", "Who are you"},
    {"assistant", "   I am an assistant   "},
    {"user", "Another question"},
};
#define N_CONV 6

static void check(ChatTemplate t, const char *bos, const char *expected) {
    Err e = {{0}};
    char *s = chat_render(t, CONV, N_CONV, 1, bos, &e);
    assert_non_null(s);
    if (strcmp(s, expected))
        fprintf(stderr, "%s:\n got '%s'\n exp '%s'\n", chat_template_name(t), s, expected);
    assert_string_equal(s, expected);
    free(s);
}

static void test_render(void **state) {
    (void)state;
    check(CHAT_TMPL_CHATML, NULL,
          "<|im_start|>system\nYou are a helpful "
          "assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
          "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
          "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother "
          "question<|im_end|>\n<|im_start|>assistant\n");
    check(CHAT_TMPL_LLAMA2, "<s>",
          "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi "
          "there</s><s>[INST] "
          "Who are you [/INST]   I am an assistant   </s><s>[INST] Another question [/INST]");
    check(
        CHAT_TMPL_LLAMA2, NULL,
        "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST]Hi there</s>[INST] "
        "Who are you [/INST]   I am an assistant   </s>[INST] Another question [/INST]");
    check(
        CHAT_TMPL_LLAMA3, NULL,
        "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful "
        "assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_"
        "header_id|>assistant<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_"
        "header_id|>\n\nWho are you<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am "
        "an assistant<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nAnother "
        "question<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
    check(CHAT_TMPL_MISTRAL, NULL,
          " [INST] You are a helpful assistant\n\nHello [/INST] Hi there</s> [INST] Who are you "
          "[/INST]    I am an assistant   </s> [INST] Another question [/INST]");
    check(CHAT_TMPL_GEMMA, NULL,
          "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>"
          "model\nHi there<end_of_turn>\n<start_of_turn>user\nWho are "
          "you<end_of_turn>\n<start_of_turn>model\nI am an "
          "assistant<end_of_turn>\n<start_of_turn>user\nAnother "
          "question<end_of_turn>\n<start_of_turn>model\n");
    check(
        CHAT_TMPL_PHI3, NULL,
        "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi "
        "there<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   "
        "<|end|>\n<|user|>\nAnother question<|end|>\n<|assistant|>\n");
    /* zephyr-7b-beta's template with eos_token = </s> */
    check(CHAT_TMPL_ZEPHYR, NULL,
          "<|system|>\nYou are a helpful assistant</s>\n<|user|>\nHello</s>\n<|assistant|>\nHi "
          "there</s>\n<|user|>\nWho are you</s>\n<|assistant|>\n   I am an assistant   "
          "</s>\n<|user|>\nAnother question</s>\n<|assistant|>\n");

    /* a 3-message conversation without the generation prompt */
    Err e = {{0}};
    char *s = chat_render(CHAT_TMPL_CHATML, CONV, 3, 0, NULL, &e);
    assert_string_equal(s, "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>"
                           "user\nHello<|im_end|>\n<|im_start|>assistant\nHi there<|im_end|>\n");
    free(s);
    /* bad role */
    ChatMessage bad[] = {{"robot", "x"}};
    assert_null(chat_render(CHAT_TMPL_CHATML, bad, 1, 1, NULL, &e));
    assert_non_null(strstr(e.msg, "robot"));
    /* empty conversation + generation prompt */
    s = chat_render(CHAT_TMPL_LLAMA3, NULL, 0, 1, NULL, &e);
    assert_string_equal(s, "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(s);
}

static void test_names(void **state) {
    (void)state;
    for (int i = 0; i < CHAT_TMPL_COUNT; i++)
        assert_int_equal(chat_template_from_name(chat_template_name((ChatTemplate)i)), i);
    assert_int_equal(chat_template_from_name("nope"), CHAT_TMPL_UNKNOWN);
    assert_int_equal(chat_template_from_name(NULL), CHAT_TMPL_UNKNOWN);
}

static void test_detect(void **state) {
    (void)state;
    /* HuggingFaceTB/SmolLM2-135M-Instruct tokenizer_config.json chat_template */
    const char *smollm2 =
        "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
        "'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
        "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ "
        "'<|im_start|>assistant\n' }}{% endif %}";
    assert_int_equal(chat_template_detect(smollm2), CHAT_TMPL_CHATML);
    /* the rest: template strings from llama.cpp's test-chat-template.cpp */
    assert_int_equal(
        chat_template_detect("{% for message in messages %}{{'<|im_start|>' + message['role'] + "
                             "'\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
                             "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"),
        CHAT_TMPL_CHATML);
    assert_int_equal(
        chat_template_detect(
            "{%- for idx in range(0, messages|length) -%}\n{%- if messages[idx]['role'] == 'user' "
            "-%}\n{%- if idx > 1 -%}\n{{- bos_token + '[INST] ' + messages[idx]['content'] + ' "
            "[/INST]' -}}\n{%- else -%}\n{{- messages[idx]['content'] + ' [/INST]' -}}\n{%- endif "
            "-%}\n{% elif messages[idx]['role'] == 'system' %}\n{{- '[INST] <<SYS>>\\n' + "
            "messages[idx]['content'] + '\\n<</SYS>>\\n\\n' -}}\n{%- elif messages[idx]['role'] == "
            "'assistant' -%}\n{{- ' '  + messages[idx]['content'] + ' ' + eos_token -}}\n{% endif "
            "%}\n{% endfor %}"),
        CHAT_TMPL_LLAMA2);
    assert_int_equal(
        chat_template_detect(
            "{{- bos_token }}\n{%- for message in loop_messages %}\n    {%- if message['role'] == "
            "'user' %}\n        {%- if loop.first and system_message is defined %}\n            "
            "{{- "
            "' [INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}\n        "
            "{%- else %}\n            {{- ' [INST] ' + message['content'] + ' [/INST]' }}\n        "
            "{%- endif %}\n    {%- elif message['role'] == 'assistant' %}\n        {{- ' ' + "
            "message['content'] + eos_token}}\n    {%- endif %}\n{%- endfor %}\n"),
        CHAT_TMPL_MISTRAL);
    assert_int_equal(
        chat_template_detect(
            "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not "
            "supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == "
            "'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% "
            "endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + "
            "'<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt "
            "%}{{'<start_of_turn>model\\n'}}{% endif %}"),
        CHAT_TMPL_GEMMA);
    assert_int_equal(
        chat_template_detect(
            "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
            "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] "
            "| trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content "
            "%}{% endif %}{{ content }}{% endfor %}{{ "
            "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}"),
        CHAT_TMPL_LLAMA3);
    assert_int_equal(
        chat_template_detect(
            "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') "
            "%}{{'<|user|>' + '\n' + message['content'] + '<|end|>' + '\n' + '<|assistant|>' + "
            "'\n'}}{% elif (message['role'] == 'assistant') %}{{message['content'] + '<|end|>' + "
            "'\n'}}{% endif %}{% endfor %}"),
        CHAT_TMPL_PHI3);
    /* HuggingFaceH4/zephyr-7b-beta */
    assert_int_equal(
        chat_template_detect(
            "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + "
            "message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ "
            "'<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == "
            "'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif "
            "%}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif "
            "%}\n{% endfor %}"),
        CHAT_TMPL_ZEPHYR);
    assert_int_equal(chat_template_detect("chatml"), CHAT_TMPL_CHATML);
    assert_int_equal(chat_template_detect("{{ messages }}"), CHAT_TMPL_UNKNOWN);
    assert_int_equal(chat_template_detect(NULL), CHAT_TMPL_UNKNOWN);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_detect),
    };
    return TEST_MAIN(tests);
}
