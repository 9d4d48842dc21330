// A minimal DPDK program for the tests of the uio export's NIC (Tests/VMBusNetworkTests/
// DpdkTests.swift builds it with the system's libdpdk when it is installed; never shipped).
// It brings port 0 up (whatever PMD probed it: netvsc over the export, through the preload
// library), then sends back every frame it receives, unchanged,
// until it has reflected COUNT frames or TIMEOUT seconds passed.
//   dpdk-probe EAL-ARGS -- COUNT TIMEOUT
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_cycles.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    int used = rte_eal_init(argc, argv);
    if (used < 0) { fprintf(stderr, "dpdk-probe: EAL init failed\n"); return 2; }
    argc -= used; argv += used;
    long count = argc > 1 ? atol(argv[1]) : 100;
    long timeout = argc > 2 ? atol(argv[2]) : 30;
    if (rte_eth_dev_count_avail() < 1) { fprintf(stderr, "dpdk-probe: no port\n"); return 3; }
    struct rte_mempool *pool = rte_pktmbuf_pool_create("probe", 2047, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
    if (pool == NULL) { fprintf(stderr, "dpdk-probe: no mbuf pool\n"); return 4; }
    struct rte_eth_conf conf = {0};
    if (rte_eth_dev_configure(0, 1, 1, &conf) < 0 || rte_eth_rx_queue_setup(0, 0, 256, rte_socket_id(), NULL, pool) < 0
        || rte_eth_tx_queue_setup(0, 0, 256, rte_socket_id(), NULL) < 0 || rte_eth_dev_start(0) < 0) {
        fprintf(stderr, "dpdk-probe: cannot start port 0\n");
        return 5;
    }
    rte_eth_promiscuous_enable(0);
    struct rte_ether_addr mac;
    rte_eth_macaddr_get(0, &mac);
    printf("dpdk-probe: up " RTE_ETHER_ADDR_PRT_FMT "\n", RTE_ETHER_ADDR_BYTES(&mac));
    fflush(stdout);
    long reflected = 0;
    uint64_t end = rte_get_timer_cycles() + (uint64_t)timeout * rte_get_timer_hz();
    while (reflected < count && rte_get_timer_cycles() < end) {
        struct rte_mbuf *frames[32];
        uint16_t got = rte_eth_rx_burst(0, 0, frames, 32);
        uint16_t sent = 0;
        while (sent < got && rte_get_timer_cycles() < end) sent += rte_eth_tx_burst(0, 0, frames + sent, got - sent);
        for (uint16_t i = sent; i < got; i++) rte_pktmbuf_free(frames[i]);
        reflected += sent;
    }
    printf("dpdk-probe: reflected %ld\n", reflected);
    fflush(stdout);
    rte_eth_dev_stop(0);
    rte_eth_dev_close(0);
    rte_eal_cleanup();
    return reflected >= count ? 0 : 1;
}
