/*
 * pool.c -- the helper threads that split a large batch.
 *
 * Starting a thread and joining it costs 40-50 us on a virtual machine, as
 * much as a 100-row forest batch takes: helpers are started once per
 * process, on the first call that splits, and kept.  After a job a helper
 * spins for a while (about a tenth of a millisecond) before it sleeps, so
 * that back-to-back calls find it awake, as ONNX Runtime's and OpenMP's
 * pools do.  One call at a time uses the pool; a concurrent call (another
 * Python thread, the GIL being released) runs on its own thread instead.
 * A forked child (gunicorn's workers) has no helpers: the fork handler
 * resets the pool, and the child starts its own when it needs them.
 */
#include "mlfast.h"
#include <pthread.h>
#include <stdatomic.h>

static int mf_num_threads = 1;

int
mf_get_num_threads(void)
{
    return mf_num_threads;
}

int
mf_set_num_threads(int n)
{
    mf_num_threads = n < 1 ? 1 : n;
    return 0;
}

#if defined(__x86_64__) || defined(__i386__)
#define MF_CPU_RELAX() __builtin_ia32_pause()
#else
#define MF_CPU_RELAX() ((void)0)
#endif
#define MF_SPIN_ROUNDS 20000

typedef struct {
    pthread_mutex_t job_lock;    /* held by the call using the pool */
    pthread_mutex_t lock;        /* guards the waits below */
    pthread_cond_t wake;         /* helpers wait here for a job */
    pthread_cond_t done;         /* the caller waits here for the helpers */
    int n_helpers;
    mf_task_fn fn;
    char *tasks;                 /* helper i runs task i + 1 when i + 1 < n_tasks */
    size_t task_size;
    int n_tasks;
    atomic_ulong generation;     /* one more for each job */
    atomic_int busy;             /* helpers not done with the current job */
} mf_pool;

static mf_pool pool = {
    PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_MUTEX_INITIALIZER,
    PTHREAD_COND_INITIALIZER,
    PTHREAD_COND_INITIALIZER,
    0,
    NULL,
    NULL,
    0,
    0,
    0,
    0,
};

static void
pool_after_fork_child(void)
{
    pthread_mutex_init(&pool.job_lock, NULL);
    pthread_mutex_init(&pool.lock, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pthread_cond_init(&pool.done, NULL);
    pool.n_helpers = 0;
    pool.fn = NULL;
    pool.tasks = NULL;
    pool.task_size = 0;
    pool.n_tasks = 0;
    atomic_store(&pool.generation, 0);
    atomic_store(&pool.busy, 0);
}

int
mf_pool_init(void)
{
    return pthread_atfork(NULL, NULL, pool_after_fork_child) == 0 ? 0 : -1;
}

static void *
pool_main(void *arg)
{
    int me = (int)(intptr_t)arg;
    unsigned long seen = 0, g;

    for (;;) {
        int spins = 0;
        while ((g = atomic_load(&pool.generation)) == seen && spins < MF_SPIN_ROUNDS) {
            MF_CPU_RELAX();
            spins++;
        }
        if (g == seen) {
            pthread_mutex_lock(&pool.lock);
            while ((g = atomic_load(&pool.generation)) == seen) {
                pthread_cond_wait(&pool.wake, &pool.lock);
            }
            pthread_mutex_unlock(&pool.lock);
        }
        seen = g;
        if (me + 1 < pool.n_tasks) {
            pool.fn(pool.tasks + (size_t)(me + 1) * pool.task_size);
        }
        if (atomic_fetch_sub(&pool.busy, 1) == 1) {
            pthread_mutex_lock(&pool.lock);
            pthread_cond_signal(&pool.done);
            pthread_mutex_unlock(&pool.lock);
        }
    }
    return NULL;
}

/* Runs fn(task 0) here and the other tasks on helpers; with no pool to be
 * had (another call has it, or no helper could start), task 0 alone runs,
 * and must then do the whole job itself (tasks claim work in turn).
 * Called without the GIL. */
void
mf_pool_run(mf_task_fn fn, void *tasks, size_t task_size, int n_tasks)
{
    int spins = 0;
    if (pthread_mutex_trylock(&pool.job_lock) != 0) {
        fn(tasks);       /* another call has the pool */
    }
    else {
        while (pool.n_helpers < n_tasks - 1) {
            pthread_t thread;
            pthread_attr_t attr;
            int ok = pthread_attr_init(&attr) == 0;
            ok = ok && pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0;
            ok = ok &&
                 pthread_create(&thread, &attr, pool_main, (void *)(intptr_t)pool.n_helpers) == 0;
            pthread_attr_destroy(&attr);
            if (!ok) {
                break;
            }
            pool.n_helpers++;
        }
        if (pool.n_helpers > 0) {
            pool.fn = fn;
            pool.tasks = tasks;
            pool.task_size = task_size;
            pool.n_tasks = n_tasks;
            atomic_store(&pool.busy, pool.n_helpers);
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.generation, 1);
            pthread_cond_broadcast(&pool.wake);
            pthread_mutex_unlock(&pool.lock);
        }
        fn(tasks);
        while (atomic_load(&pool.busy) > 0 && spins < MF_SPIN_ROUNDS) {
            MF_CPU_RELAX();
            spins++;
        }
        if (atomic_load(&pool.busy) > 0) {
            pthread_mutex_lock(&pool.lock);
            while (atomic_load(&pool.busy) > 0) {
                pthread_cond_wait(&pool.done, &pool.lock);
            }
            pthread_mutex_unlock(&pool.lock);
        }
        pool.fn = NULL;
        pool.tasks = NULL;
        pool.n_tasks = 0;
        pthread_mutex_unlock(&pool.job_lock);
    }
}
