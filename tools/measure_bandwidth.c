// Memory read bandwidth: T threads each stream their slice of one large buffer, summing
// it so the loads cannot be dropped; the time of a pass runs from a barrier that starts
// all threads to the moment the last one finishes. Prints JSON: best and median GB/s
// (1e9 bytes) over the passes, per thread count.
//
//   cc -O3 -march=native -pthread tools/measure_bandwidth.c -o measure_bandwidth
//   ./measure_bandwidth [MiB=2048] [passes=10] [threads...=1 2]
//
// The buffer must dwarf the last-level cache (32 MiB per CCD on the EPYC this was
// written for), or the number is the cache's.

#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct job {
    const uint64_t *p;
    size_t n;
    pthread_barrier_t *start;
    uint64_t sum;
};

// Eight independent accumulators so the adds never limit the loads; -O3 vectorizes it.
static void *stream(void *arg) {
    struct job *j = arg;
    pthread_barrier_wait(j->start);
    uint64_t s[8] = {0};
    const uint64_t *p = j->p;
    for (size_t i = 0; i + 8 <= j->n; i += 8) {
        for (int k = 0; k < 8; k++) s[k] += p[i + k];
    }
    uint64_t t = 0;
    for (int k = 0; k < 8; k++) t += s[k];
    j->sum = t;
    return NULL;
}

static void *touch(void *arg) {
    struct job *j = arg;
    memset((void *)j->p, 1, j->n * sizeof(uint64_t));
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 2048;
    int passes = argc > 2 ? atoi(argv[2]) : 10;
    int counts[64], n_counts = 0;
    for (int i = 3; i < argc && n_counts < 64; i++) counts[n_counts++] = atoi(argv[i]);
    if (n_counts == 0) {
        counts[0] = 1;
        counts[1] = 2;
        n_counts = 2;
    }
    if (mib == 0 || passes <= 0) {
        fprintf(stderr, "usage: %s [MiB] [passes] [threads...]\n", argv[0]);
        return 1;
    }
    size_t bytes = mib << 20;
    size_t words = bytes / sizeof(uint64_t);
    uint64_t *buf = aligned_alloc(4096, bytes);
    if (!buf) {
        fprintf(stderr, "measure_bandwidth: cannot allocate %zu MiB\n", mib);
        return 1;
    }
    uint64_t checksum = 0;
    printf("{\"buffer_bytes\": %zu, \"passes\": %d, \"results\": [", bytes, passes);
    for (int c = 0; c < n_counts; c++) {
        int nt = counts[c];
        if (nt <= 0 || nt > 256) {
            fprintf(stderr, "measure_bandwidth: bad thread count %d\n", nt);
            return 1;
        }
        pthread_t th[256];
        struct job jobs[256];
        pthread_barrier_t start;
        size_t per = words / nt / 8 * 8;
        // Each thread first writes its own slice, so its pages sit where it runs.
        for (int t = 0; t < nt; t++) {
            jobs[t] = (struct job){buf + t * per, per, &start, 0};
            pthread_create(&th[t], NULL, touch, &jobs[t]);
        }
        for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
        double gbs[1024];
        int np = passes > 1024 ? 1024 : passes;
        for (int pass = 0; pass < np; pass++) {
            pthread_barrier_init(&start, NULL, nt + 1);
            for (int t = 0; t < nt; t++) pthread_create(&th[t], NULL, stream, &jobs[t]);
            pthread_barrier_wait(&start);
            double t0 = now();
            for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
            double dt = now() - t0;
            pthread_barrier_destroy(&start);
            for (int t = 0; t < nt; t++) checksum += jobs[t].sum;
            gbs[pass] = (double)(per * nt * sizeof(uint64_t)) / dt / 1e9;
        }
        qsort(gbs, np, sizeof(double), cmp);
        printf("%s{\"threads\": %d, \"best_gbs\": %.2f, \"median_gbs\": %.2f, \"worst_gbs\": %.2f}",
               c ? ", " : "", nt, gbs[np - 1], gbs[np / 2], gbs[0]);
        fflush(stdout);
    }
    printf("], \"checksum\": %llu}\n", (unsigned long long)(checksum & 0xffff));
    free(buf);
    return 0;
}
