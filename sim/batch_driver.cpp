// Batch driver for a Verilated lutforge design. The Python side (sim/batch.py) generates the
// port accessors and includes this file; no Python runs per cycle.
//
//   driver vectors IN OUT N LATENCY   -- apply N input vectors, one per cycle (or per eval when
//                                        the design has no clock); write N output vectors taken
//                                        LATENCY cycles later.
//   driver streams JOB OUT            -- drive the design's lib.stream interfaces from JOB with
//                                        seeded valid/ready stalls until every output stream has
//                                        delivered its expected count. Memory responders
//                                        (a request sink of addresses paired with a response
//                                        source of data words) answer from an image in JOB.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <random>
#include <vector>

static std::vector<uint32_t> read_words(FILE* f, size_t count) {
    std::vector<uint32_t> words(count);
    if (count && fread(words.data(), 4, count, f) != count) {
        fprintf(stderr, "batch driver: input file ended early\n");
        exit(2);
    }
    return words;
}

static uint64_t read_u64(FILE* f) {
    uint64_t value;
    if (fread(&value, 8, 1, f) != 1) {
        fprintf(stderr, "batch driver: job file ended early\n");
        exit(2);
    }
    return value;
}

static void write_u64(FILE* f, uint64_t value) { fwrite(&value, 8, 1, f); }

struct Harness {
    VerilatedContext ctx;
    Vtop* top;
    Harness() { top = new Vtop{&ctx}; }
    ~Harness() { top->final(); delete top; }
    void tick() {
#if HAS_CLK
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
#endif
    }
    void reset() {
#if HAS_RST
        top->rst = 1;
        top->eval();
        tick();
        tick();
        top->rst = 0;
        top->eval();
#endif
    }
};

static int run_vectors(const char* in_path, const char* out_path, size_t n, size_t latency) {
    FILE* in = fopen(in_path, "rb");
    if (!in) { perror(in_path); return 2; }
    std::vector<std::vector<uint32_t>> inputs;
    for (int p = 0; p < N_IN; p++) inputs.push_back(read_words(in, n * IN_WORDS[p]));
    fclose(in);
    std::vector<std::vector<uint32_t>> outputs;
    for (int p = 0; p < N_OUT; p++) outputs.emplace_back(n * OUT_WORDS[p]);

    Harness h;
    h.reset();
    std::vector<uint32_t> zero(MAX_WORDS, 0);
    for (size_t t = 0; t < n + latency; t++) {
        for (int p = 0; p < N_IN; p++)
            set_in(h.top, p, t < n ? &inputs[p][t * IN_WORDS[p]] : zero.data());
        h.top->eval();
        if (t >= latency)
            for (int p = 0; p < N_OUT; p++) get_out(h.top, p, &outputs[p][(t - latency) * OUT_WORDS[p]]);
        h.tick();
    }
    FILE* out = fopen(out_path, "wb");
    if (!out) { perror(out_path); return 2; }
    for (int p = 0; p < N_OUT; p++) fwrite(outputs[p].data(), 4, outputs[p].size(), out);
    fclose(out);
    return 0;
}

static int run_streams(const char* job_path, const char* out_path) {
    FILE* job = fopen(job_path, "rb");
    if (!job) { perror(job_path); return 2; }
    uint64_t seed = read_u64(job);
    double in_stall = read_u64(job) / 1e6, out_stall = read_u64(job) / 1e6;
    uint64_t max_cycles = read_u64(job);
    std::vector<std::vector<uint32_t>> constants;
    for (int c = 0; c < N_CONST; c++) constants.push_back(read_words(job, IN_WORDS[CONST_PORT[c]]));
    std::vector<std::vector<uint32_t>> source_data;
    std::vector<uint64_t> source_count;
    for (int s = 0; s < N_SRC; s++) {
        source_count.push_back(read_u64(job));
        source_data.push_back(read_words(job, source_count[s] * SRC_WORDS[s]));
    }
    std::vector<uint64_t> sink_expect;
    for (int s = 0; s < N_SINK; s++) sink_expect.push_back(read_u64(job));
    // Memories: a request sink carrying an address, a response source answering in order.
    struct Memory {
        int sink, src;
        uint64_t latency, depth;
        std::vector<uint32_t> image;
        std::deque<std::pair<uint64_t, uint64_t>> pending;  // (cycle the answer is due, address)
    };
    std::vector<Memory> memories(read_u64(job));
    std::vector<int> memory_of_src(N_SRC, -1), memory_of_sink(N_SINK, -1);
    for (size_t m = 0; m < memories.size(); m++) {
        Memory& mem = memories[m];
        mem.sink = (int)read_u64(job);
        mem.src = (int)read_u64(job);
        mem.latency = read_u64(job);
        mem.depth = read_u64(job);
        mem.image = read_words(job, mem.depth * SRC_WORDS[mem.src]);
        memory_of_src[mem.src] = (int)m;
        memory_of_sink[mem.sink] = (int)m;
    }
    fclose(job);

    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> coin(0.0, 1.0);
    Harness h;
    for (int c = 0; c < N_CONST; c++) set_in(h.top, CONST_PORT[c], constants[c].data());
    h.reset();

    std::vector<uint64_t> source_pos(N_SRC, 0), sink_count(N_SINK, 0);
    std::vector<bool> offering(N_SRC, false);
    std::vector<std::vector<uint32_t>> sink_data(N_SINK);
    std::vector<uint32_t> words(MAX_WORDS);
    uint64_t cycle = 0, first_in = UINT64_MAX, last_out = 0;
    auto finished = [&]() {
        for (int s = 0; s < N_SINK; s++) if (sink_count[s] < sink_expect[s]) return false;
        return true;
    };
    while (!finished() && cycle < max_cycles) {
        for (int s = 0; s < N_SRC; s++) {
            const uint32_t* payload = words.data();
            if (memory_of_src[s] >= 0) {
                Memory& mem = memories[memory_of_src[s]];
                bool due = !mem.pending.empty() && mem.pending.front().first <= cycle;
                if (!offering[s] && due) offering[s] = coin(rng) >= in_stall;
                if (offering[s]) payload = &mem.image[mem.pending.front().second * SRC_WORDS[s]];
            } else {
                // A source that has raised valid keeps it until the transfer happens.
                if (!offering[s] && source_pos[s] < source_count[s]) offering[s] = coin(rng) >= in_stall;
                if (offering[s]) payload = &source_data[s][source_pos[s] * SRC_WORDS[s]];
            }
            src_drive(h.top, s, offering[s], payload);
        }
        for (int s = 0; s < N_SINK; s++) sink_ready(h.top, s, coin(rng) >= out_stall);
        h.top->eval();
        for (int s = 0; s < N_SRC; s++) {
            if (offering[s] && src_accepted(h.top, s)) {
                source_pos[s]++;
                offering[s] = false;
                if (memory_of_src[s] >= 0) memories[memory_of_src[s]].pending.pop_front();
                if (first_in == UINT64_MAX) first_in = cycle;
            }
        }
        for (int s = 0; s < N_SINK; s++) {
            if (sink_fired(h.top, s)) {
                sink_payload(h.top, s, words.data());
                if (memory_of_sink[s] >= 0) {
                    Memory& mem = memories[memory_of_sink[s]];
                    uint64_t address = words[0] | (SINK_WORDS[s] > 1 ? (uint64_t)words[1] << 32 : 0);
                    if (address >= mem.depth) {
                        fprintf(stderr, "memory request %llu at cycle %llu is outside the image of %llu words\n",
                                (unsigned long long)address, (unsigned long long)cycle,
                                (unsigned long long)mem.depth);
                        return 4;
                    }
                    mem.pending.emplace_back(cycle + mem.latency, address);
                }
                sink_data[s].insert(sink_data[s].end(), words.begin(), words.begin() + SINK_WORDS[s]);
                sink_count[s]++;
                if (memory_of_sink[s] < 0) last_out = cycle;
            }
        }
        h.tick();
        cycle++;
    }
    FILE* out = fopen(out_path, "wb");
    if (!out) { perror(out_path); return 2; }
    write_u64(out, cycle);
    write_u64(out, first_in == UINT64_MAX ? 0 : first_in);
    write_u64(out, last_out);
    for (int s = 0; s < N_SRC; s++) write_u64(out, source_pos[s]);
    for (int s = 0; s < N_SINK; s++) {
        write_u64(out, sink_count[s]);
        fwrite(sink_data[s].data(), 4, sink_data[s].size(), out);
    }
    h.top->eval();
    for (int p = 0; p < N_OUT; p++) {
        get_out(h.top, p, words.data());
        fwrite(words.data(), 4, OUT_WORDS[p], out);
    }
    fclose(out);
    return finished() ? 0 : 3;
}

int main(int argc, char** argv) {
    if (argc == 6 && !strcmp(argv[1], "vectors"))
        return run_vectors(argv[2], argv[3], strtoull(argv[4], 0, 10), strtoull(argv[5], 0, 10));
    if (argc == 4 && !strcmp(argv[1], "streams")) return run_streams(argv[2], argv[3]);
    fprintf(stderr, "usage: %s vectors IN OUT N LATENCY | streams JOB OUT\n", argv[0]);
    return 2;
}
