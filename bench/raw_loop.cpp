// The practical limit for bench/sim_throughput.py: the same Verilated block driven by a bare C++
// loop, operands from a xorshift generator, outputs folded into a checksum so nothing is elided.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include "Vtop.h"
#include "verilated.h"

int main(int argc, char** argv) {
    uint64_t n = argc > 1 ? strtoull(argv[1], 0, 10) : 1000000;
    VerilatedContext ctx;
    Vtop top{&ctx};
    uint64_t state = 0x9E3779B97F4A7C15ull, checksum = 0;
    for (uint64_t i = 0; i < n; i++) {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17;
        top.a = state & 0xFFFF;
        top.b = (state >> 16) & 0xFFFF;
        top.eval();
        checksum += top.r;
    }
    printf("%llu\n", (unsigned long long)checksum);
    return 0;
}
