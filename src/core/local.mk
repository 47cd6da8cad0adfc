# src/core/local.mk - libcaio
lib_LTLIBRARIES += libcaio.la
include_HEADERS = src/include/caio.h

# libtool -version-info current:revision:age.  Bump revision for any release;
# on an interface addition bump current and age and zero revision; on a
# removal or change bump current, zero revision and age.
libcaio_la_LDFLAGS = -version-info 0:0:0 -no-undefined \
	-Wl,--version-script=$(top_srcdir)/src/core/libcaio.sym
libcaio_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden -DCAIO_BUILDING_LIBRARY $(LIBURING_CFLAGS) \
	-DCAIO_SYSCONFDIR='"$(sysconfdir)"'
libcaio_la_LIBADD = $(LIBURING_LIBS) $(LIBAIO_LIBS) -lpthread
libcaio_la_SOURCES = \
	src/core/internal.h \
	src/core/core.c \
	src/core/select.c \
	src/core/execute.c \
	src/core/backend-thread.c \
	src/core/backend-sync.c
if HAVE_LIBURING
libcaio_la_SOURCES += src/core/backend-uring.c
endif
if HAVE_LIBAIO
libcaio_la_SOURCES += src/core/backend-aio.c
endif
EXTRA_DIST += src/core/libcaio.sym
