/* control.c - the abstract socket address derived from a mount point. */
#include "config.h"
#include "control.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* FNV-1a: a stable 64-bit name for any path length. */
static uint64_t path_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

socklen_t cfs_control_address(const char *mountpoint, struct sockaddr_un *sa)
{
	int n;

	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	n = snprintf(sa->sun_path + 1, sizeof(sa->sun_path) - 1,
		     "caiofs/%016llx", (unsigned long long)path_hash(mountpoint));
	return offsetof(struct sockaddr_un, sun_path) + 1 + n;
}
