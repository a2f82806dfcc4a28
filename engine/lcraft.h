/* SPDX-License-Identifier: MIT */
/*
 * lcraft public API.
 *
 * Today the library exports the sans-I/O Raft core (core.h): an embedding
 * application can drive it with its own storage and transport. The runtime
 * API (nodes, groups on lcores, proposals with callbacks, io_uring storage,
 * UDP/DPDK transports) arrives with the runtime; see docs/api.md.
 */
#ifndef LCRAFT_H
#define LCRAFT_H

#include "core.h"

#define LCRAFT_VERSION_MAJOR 0
#define LCRAFT_VERSION_MINOR 1
#define LCRAFT_VERSION_PATCH 0

#endif /* LCRAFT_H */
