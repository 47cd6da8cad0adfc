/* control.h - the address of a mount's control socket, shared by caiofs and caiofs-stat. */
#ifndef CAIOFS_CONTROL_H
#define CAIOFS_CONTROL_H

#include <sys/socket.h>
#include <sys/un.h>

/*
 * An abstract unix socket named after the canonical mount point: nothing
 * appears in the mounted tree or on disk, and it vanishes with the daemon.
 * Fills sa and returns the address length for bind()/connect().
 */
socklen_t cfs_control_address(const char *mountpoint, struct sockaddr_un *sa);

#endif
