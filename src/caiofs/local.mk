# src/caiofs/local.mk - the caiofs FUSE daemon, its stats client and their man pages
if BUILD_CAIOFS
bin_PROGRAMS += caiofs caiofs-stat
dist_man_MANS += man/caiofs.1 man/caiofs-stat.1

caiofs_SOURCES = \
	src/caiofs/caiofs.h \
	src/caiofs/control.h \
	src/caiofs/control.c \
	src/caiofs/main.c \
	src/caiofs/inode.c \
	src/caiofs/ops.c \
	src/caiofs/data.c \
	src/caiofs/loop.c \
	src/caiofs/ring.c \
	src/caiofs/stats.c
caiofs_CFLAGS = $(AM_CFLAGS) $(FUSE3_CFLAGS) $(LIBURING_CFLAGS)
caiofs_LDADD = libcaio.la $(FUSE3_LIBS) $(LIBURING_LIBS) -lpthread

caiofs_stat_SOURCES = \
	src/caiofs/control.h \
	src/caiofs/control.c \
	src/caiofs/caiofs-stat.c
else
EXTRA_DIST += man/caiofs.1 man/caiofs-stat.1
endif
