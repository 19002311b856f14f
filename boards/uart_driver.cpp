// UART-level driver for a Verilated board top with ports clk, rst, rx, tx (sim/uart_sim.py).
// The design sees real 8N1 waveforms on rx/tx at DIVISOR clock cycles per bit; the Python side
// sees a byte pipe. Commands on stdin, one per line, answers on stdout:
//
//   W <hex>            queue bytes to send to the design's rx pin          -> "ok"
//   R <n> <cycles>     run until n bytes came from the tx pin, or cycles   -> "D <hex or -> <cycle>"
//                      clock cycles passed; returns the bytes received
//   X                  drop received bytes not yet returned                 -> "ok"
//   Q                  quit
//
// Simulated time advances only inside R: the design is frozen while Python thinks.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>

#include "Vtop.h"
#include "verilated.h"

struct Uart {
    VerilatedContext ctx;
    Vtop* top;
    int divisor;
    uint64_t cycle = 0;
    // Host -> design (rx pin).
    std::deque<uint8_t> to_send;
    int send_bit = -1;  // -1 idle, 0 start, 1..8 data, 9 stop
    int send_timer = 0;
    uint8_t send_byte = 0;
    // Design -> host (tx pin).
    std::deque<uint8_t> received;
    int recv_bit = -1;  // -1 idle, 0 start, 1..8 data, 9 stop
    int recv_timer = 0;
    uint8_t recv_byte = 0;

    explicit Uart(int div) : divisor(div) {
        top = new Vtop{&ctx};
        top->rx = 1;
        top->rst = 1;
        top->clk = 0;
        top->eval();
        for (int i = 0; i < 4; i++) tick();
        top->rst = 0;
        top->eval();
    }
    ~Uart() { top->final(); delete top; }

    void tick() {
        top->clk = 1;
        top->eval();
        top->clk = 0;
        top->eval();
        cycle++;
    }

    void drive_rx() {
        if (send_bit < 0) {
            if (to_send.empty()) { top->rx = 1; return; }
            send_byte = to_send.front();
            to_send.pop_front();
            send_bit = 0;
            send_timer = divisor;
        }
        if (send_bit == 0) top->rx = 0;
        else if (send_bit <= 8) top->rx = (send_byte >> (send_bit - 1)) & 1;
        else top->rx = 1;
        if (--send_timer == 0) {
            send_timer = divisor;
            if (++send_bit > 9) send_bit = -1;
        }
    }

    void sample_tx() {
        int line = top->tx;
        if (recv_bit < 0) {
            if (!line) { recv_bit = 0; recv_timer = divisor / 2; }
            return;
        }
        if (--recv_timer > 0) return;
        recv_timer = divisor;
        if (recv_bit == 0) {
            if (line) { recv_bit = -1; return; }  // glitch
        } else if (recv_bit <= 8) {
            recv_byte = (recv_byte >> 1) | (line ? 0x80 : 0);
        } else {
            if (line) received.push_back(recv_byte);  // a bad stop bit drops the byte
            recv_bit = -1;
            return;
        }
        recv_bit++;
    }

    void step() {
        drive_rx();
        tick();
        sample_tx();
    }
};

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: driver DIVISOR\n");
        return 2;
    }
    Uart uart(atoi(argv[1]));
    static char line[1 << 20];
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'Q') break;
        if (line[0] == 'W') {
            for (char* p = line + 2; hexval(p[0]) >= 0 && hexval(p[1]) >= 0; p += 2)
                uart.to_send.push_back((uint8_t)(hexval(p[0]) * 16 + hexval(p[1])));
            printf("ok\n");
        } else if (line[0] == 'X') {
            uart.received.clear();
            printf("ok\n");
        } else if (line[0] == 'R') {
            unsigned long long n = 0, cycles = 0;
            if (sscanf(line + 1, "%llu %llu", &n, &cycles) != 2) {
                fprintf(stderr, "uart driver: bad command %s", line);
                return 2;
            }
            for (unsigned long long c = 0; c < cycles && uart.received.size() < n; c++) uart.step();
            std::string hex;
            char buf[3];
            while (!uart.received.empty() && hex.size() < 2 * n) {
                snprintf(buf, sizeof buf, "%02x", uart.received.front());
                hex += buf;
                uart.received.pop_front();
            }
            printf("D %s %llu\n", hex.empty() ? "-" : hex.c_str(), (unsigned long long)uart.cycle);
        } else {
            fprintf(stderr, "uart driver: unknown command %s", line);
            return 2;
        }
        fflush(stdout);
    }
    return 0;
}
