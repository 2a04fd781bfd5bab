/* sched.c - jobs and the scheduler thread that owns the Engine.
 *
 * Loop: admit queued jobs into free slots (FIFO), prefill at most one
 * chunk of one new prompt, then one batched engine_step over every
 * sequence that is decoding. Finished, failed or cancelled sequences leave
 * between steps and their slot is reused by the next queued job. */
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "server/srv_internal.h"

/* ------------------------------------------------------------ jobs */

SrvJob *job_new(int32_t *prompt, int n_prompt, const GenParams *gp, char **stop, int n_stop,
                int want_logprobs) {
    SrvJob *j = xcalloc(1, sizeof *j);
    j->prompt = prompt;
    j->n_prompt = n_prompt;
    j->gp = *gp;
    j->gp.sampling.want_prob = want_logprobs != 0;
    j->gp.n_stop = n_stop;
    for (int i = 0; i < n_stop && i < ENGINE_MAX_STOP; i++) {
        j->stop[i] = stop[i];
        j->gp.stop[i] = stop[i];
    }
    j->want_logprobs = want_logprobs;
    atomic_init(&j->cancelled, 0);
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    j->refs = 1;
    j->cap_text = 256;
    j->text = xmalloc(j->cap_text);
    j->text[0] = 0;
    j->t_submit = time_now();
    return j;
}

void job_ref(SrvJob *j) {
    pthread_mutex_lock(&j->mu);
    j->refs++;
    pthread_mutex_unlock(&j->mu);
}

void job_unref(SrvJob *j) {
    if (!j) return;
    pthread_mutex_lock(&j->mu);
    int left = --j->refs;
    pthread_mutex_unlock(&j->mu);
    if (left > 0) return;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
    free(j->prompt);
    for (int i = 0; i < ENGINE_MAX_STOP; i++) free(j->stop[i]);
    free(j->text);
    free(j->pieces);
    free(j);
}

void job_wait_done(SrvJob *j) {
    pthread_mutex_lock(&j->mu);
    while (j->state != JOB_DONE) pthread_cond_wait(&j->cv, &j->mu);
    pthread_mutex_unlock(&j->mu);
}

/* Marks a job done (scheduler side) and wakes its reader. */
static void job_finish(SrvJob *j, FinishReason r, int n_gen, const char *err) {
    pthread_mutex_lock(&j->mu);
    j->state = JOB_DONE;
    j->finish = r;
    j->n_gen = n_gen;
    j->t_done = time_now();
    if (err) snprintf(j->err, sizeof j->err, "%s", err);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}

/* EngineTextFn: appends final text to the job. Runs on the scheduler. */
static int job_on_text(void *ud, const char *text, size_t len, int32_t token, float logprob) {
    SrvJob *j = ud;
    if (atomic_load(&j->cancelled)) return 1;
    if (len == 0) return 0;
    pthread_mutex_lock(&j->mu);
    if (j->n_text + len + 1 > j->cap_text) {
        while (j->n_text + len + 1 > j->cap_text) j->cap_text *= 2;
        j->text = xrealloc(j->text, j->cap_text);
    }
    if (j->n_pieces == j->cap_pieces) {
        j->cap_pieces = j->cap_pieces ? j->cap_pieces * 2 : 64;
        j->pieces = xrealloc(j->pieces, (size_t)j->cap_pieces * sizeof *j->pieces);
    }
    j->pieces[j->n_pieces++] = (SrvPiece){j->n_text, len, token, logprob};
    memcpy(j->text + j->n_text, text, len);
    j->n_text += len;
    j->text[j->n_text] = 0;
    if (!j->t_first) j->t_first = time_now();
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
    return 0;
}

/* ------------------------------------------------------------ scheduler */

typedef struct Slot {
    SrvJob *job; /* NULL: free */
    EngineSeq *seq;
    int prefilled; /* engine_seq_prefill done */
} Slot;

struct Sched {
    Engine *en;
    int n_slots, n_queue, chunk;
    Slot *slots; /* n_slots; touched only by the scheduler thread */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    SrvJob **queue; /* ring of n_queue */
    int q_head, q_len;
    int n_busy;
    int stopping;
    SrvMetrics m;
    pthread_t th;
};

int sched_submit(Sched *s, SrvJob *j) {
    pthread_mutex_lock(&s->mu);
    if (s->stopping || s->q_len >= s->n_queue) {
        s->m.n_jobs_rejected++;
        pthread_mutex_unlock(&s->mu);
        return -1;
    }
    job_ref(j);
    s->queue[(s->q_head + s->q_len) % s->n_queue] = j;
    s->q_len++;
    s->m.n_jobs++;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

void sched_metrics(Sched *s, SrvMetrics *m) {
    pthread_mutex_lock(&s->mu);
    *m = s->m;
    m->queue_depth = s->q_len;
    m->slots_busy = s->n_busy;
    m->slots_total = s->n_slots;
    pthread_mutex_unlock(&s->mu);
}

/* Frees a slot's sequence and finishes its job. */
static void slot_release(Sched *s, Slot *sl, FinishReason r, const char *err) {
    int n_gen = sl->seq ? sl->seq->n_gen : 0;
    if (sl->seq && r == FINISH_NONE) r = sl->seq->finish;
    engine_seq_free(sl->seq);
    pthread_mutex_lock(&s->mu); /* before job_finish: a reader of /metrics sees its tokens */
    s->m.tok_gen += (uint64_t)n_gen;
    s->n_busy--;
    pthread_mutex_unlock(&s->mu);
    job_finish(sl->job, r, n_gen, err);
    job_unref(sl->job);
    sl->job = NULL;
    sl->seq = NULL;
    sl->prefilled = 0;
}

/* Takes queued jobs into free slots; creates their sequences. */
static void admit(Sched *s) {
    for (int i = 0; i < s->n_slots; i++) {
        Slot *sl = &s->slots[i];
        if (sl->job) continue;
        pthread_mutex_lock(&s->mu);
        SrvJob *j = NULL;
        if (s->q_len > 0) {
            j = s->queue[s->q_head];
            s->q_head = (s->q_head + 1) % s->n_queue;
            s->q_len--;
            s->n_busy++;
        }
        pthread_mutex_unlock(&s->mu);
        if (!j) return;
        sl->job = j;
        pthread_mutex_lock(&j->mu);
        j->state = JOB_RUNNING;
        j->t_start = time_now();
        pthread_mutex_unlock(&j->mu);
        if (atomic_load(&j->cancelled)) {
            slot_release(s, sl, FINISH_CANCELLED, NULL);
            continue;
        }
        Err e = {{0}};
        sl->seq = engine_seq_new(s->en, i, j->prompt, j->n_prompt, &j->gp, job_on_text, j, &e);
        if (!sl->seq) {
            LOG_WARN("server: request rejected by the engine: %s", e.msg);
            slot_release(s, sl, FINISH_ERROR, e.msg);
        }
    }
}

static void *sched_main(void *arg) {
    Sched *s = arg;
    EngineSeq **batch = xcalloc((size_t)s->n_slots, sizeof *batch);
    int rr = 0; /* round robin over prompts waiting for prefill */
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stopping && s->q_len == 0 && s->n_busy == 0) pthread_cond_wait(&s->cv, &s->mu);
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stopping) break;

        admit(s);

        /* cancelled jobs leave before any more work is spent on them */
        for (int i = 0; i < s->n_slots; i++)
            if (s->slots[i].job && atomic_load(&s->slots[i].job->cancelled))
                slot_release(s, &s->slots[i], FINISH_CANCELLED, NULL);

        /* prefill one waiting prompt per iteration, interleaved with decoding */
        for (int k = 0; k < s->n_slots; k++) {
            Slot *sl = &s->slots[(rr + k) % s->n_slots];
            if (!sl->job || sl->prefilled) continue;
            Err e = {{0}};
            EngineSeq *q = sl->seq;
            Backend *b = s->en->backend;
            int part = s->chunk > 0 && q->n_prompt - q->n_past > s->chunk;
            double t0 = time_now();
            int rc, n_done = q->n_prompt - q->n_past;
            if (part) { /* a leading chunk: KV only; engine_seq_prefill resumes at n_past */
                n_done = s->chunk;
                rc = b->prefill(b, q->slot, q->tokens + q->n_past, n_done, q->n_past, NULL, 0, &e);
                if (rc == 0) q->n_past += n_done;
            } else {
                rc = engine_seq_prefill(s->en, q, 0, &e);
            }
            double dt = time_now() - t0;
            pthread_mutex_lock(&s->mu);
            s->m.t_prompt += dt;
            s->m.tok_prompt += (uint64_t)n_done;
            s->m.n_prefills++;
            pthread_mutex_unlock(&s->mu);
            if (rc != 0) {
                LOG_WARN("server: prefill failed: %s", e.msg);
                slot_release(s, sl, FINISH_ERROR, e.msg);
            } else if (!part) {
                sl->prefilled = 1;
                if (q->done) slot_release(s, sl, FINISH_NONE, NULL);
            }
            rr = (int)(sl - s->slots + 1) % s->n_slots;
            break;
        }

        /* one batched decode step for every running sequence */
        int n = 0;
        for (int i = 0; i < s->n_slots; i++)
            if (s->slots[i].job && s->slots[i].prefilled && !s->slots[i].seq->done)
                batch[n++] = s->slots[i].seq;
        if (n > 0) {
            Err e = {{0}};
            double t0 = time_now();
            int rc = engine_step(s->en, batch, n, &e);
            double dt = time_now() - t0;
            pthread_mutex_lock(&s->mu);
            s->m.t_decode += dt;
            s->m.n_steps++;
            s->m.n_step_seqs += (uint64_t)n;
            if (dt > 0) {
                double tps = n / dt;
                s->m.tps_recent = s->m.tps_recent ? 0.9 * s->m.tps_recent + 0.1 * tps : tps;
            }
            pthread_mutex_unlock(&s->mu);
            if (rc != 0) {
                LOG_WARN("server: decode step failed: %s", e.msg);
                for (int i = 0; i < s->n_slots; i++)
                    if (s->slots[i].job && s->slots[i].prefilled)
                        slot_release(s, &s->slots[i], FINISH_ERROR, e.msg);
            }
        }
        for (int i = 0; i < s->n_slots; i++)
            if (s->slots[i].job && s->slots[i].seq && s->slots[i].seq->done)
                slot_release(s, &s->slots[i], FINISH_NONE, NULL);
    }
    /* stopping: finish everything still here */
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].job)
            slot_release(s, &s->slots[i], FINISH_CANCELLED, "server is shutting down");
    free(batch);
    return NULL;
}

Sched *sched_start(Engine *en, int n_queue, int prefill_chunk, Err *e) {
    Sched *s = xcalloc(1, sizeof *s);
    s->en = en;
    s->n_slots = en->backend->n_seq;
    s->n_queue = n_queue > 0 ? n_queue : 1;
    s->chunk = prefill_chunk;
    s->slots = xcalloc((size_t)s->n_slots, sizeof *s->slots);
    s->queue = xcalloc((size_t)s->n_queue, sizeof *s->queue);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->th, NULL, sched_main, s) != 0) {
        err_set(e, "server: cannot start the scheduler thread");
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s->slots);
        free(s->queue);
        free(s);
        return NULL;
    }
    return s;
}

void sched_stop(Sched *s) {
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    if (s->stopping) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    s->stopping = 1;
    /* queued jobs never start */
    while (s->q_len > 0) {
        SrvJob *j = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->n_queue;
        s->q_len--;
        job_finish(j, FINISH_CANCELLED, 0, "server is shutting down");
        job_unref(j);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
}

void sched_free(Sched *s) {
    if (!s) return;
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->slots);
    free(s->queue);
    free(s);
}
