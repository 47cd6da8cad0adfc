/* pycaio.h - shared types of caio._caio, the CPython binding of libcaio. */
#ifndef PYCAIO_H
#define PYCAIO_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>
#include <stdint.h>
#include <sys/types.h>

#include "caio.h"

/* O_DIRECT wants buffers aligned to the logical block size; a page is
 * enough for every device we know of. */
#define PYCAIO_ALIGN	4096

enum pycaio_kind {
	PYCAIO_READ = 0,
	PYCAIO_WRITE,
	PYCAIO_FSYNC,
	PYCAIO_FDSYNC,
};

enum pycaio_state {
	PYCAIO_NEW = 0,		/* never submitted */
	PYCAIO_FLIGHT,		/* owned by a context until it finishes */
	PYCAIO_DONE,		/* result known */
};

struct pycaio_context;

typedef struct pycaio_operation {
	PyObject_HEAD
	uint8_t kind;			/* enum pycaio_kind */
	uint8_t state;			/* enum pycaio_state */
	uint8_t cancelled;		/* cancel asked: submit no further pieces */
	uint8_t bounced;		/* already retried through an aligned copy */
	int fd;
	int64_t offset;
	size_t nbytes;			/* requested */
	size_t done;			/* transferred by the finished pieces */
	size_t piece;			/* length of the piece in flight */
	int64_t piece_res;		/* its result, stored by the libcaio callback */
	int64_t result;			/* final: byte count, 0, or -errno */
	PyObject *payload;		/* read: our bytes; write: the caller's object */
	Py_buffer view;			/* write: the caller's buffer while in flight */
	int has_view;
	char *bounce;			/* aligned copy for O_DIRECT, or NULL */
	PyObject *callback;
	PyObject *future;
	struct pycaio_context *ctx;	/* strong reference while in flight */
	caio_req *req;			/* the piece in flight, for caio_cancel */
	struct pycaio_operation *prev, *next;	/* the context's in-flight list */
} pycaio_operation;

typedef struct pycaio_context {
	PyObject_HEAD
	caio_ctx *caio;
	PyThread_type_lock lock;	/* held around every libcaio call */
	int efd;
	int closed;
	int sqpoll;
	int reap_after_flush;		/* the backend often completes inside the flush */
	int refuse_streams;		/* Linux AIO: pipes and sockets would block io_submit */
	unsigned max_requests;
	pid_t pid;
	pycaio_operation *inflight;	/* every operation we hold a reference for */
	pycaio_operation **done;	/* filled by the libcaio callback */
	size_t ndone, done_cap;
	char backend[16];
} pycaio_context;

extern PyTypeObject pycaio_operation_type;
extern PyTypeObject pycaio_context_type;

/* module.c */
PyObject *pycaio_error(int negative_errno, const char *what);
PyObject *pycaio_oserror(int negative_errno, const char *fmt, ...);
extern PyObject *pycaio_str_done, *pycaio_str_set_result, *pycaio_str_set_exception;
extern PyObject *pycaio_full_error;	/* caio.abstract.ContextFullError */

/* operation.c */
int pycaio_op_start(pycaio_context *ctx, pycaio_operation *op);
int pycaio_op_continue(pycaio_context *ctx, pycaio_operation *op);
int pycaio_op_finish(pycaio_operation *op);
void pycaio_op_fail(pycaio_operation *op, int64_t res);
PyObject *pycaio_op_value(pycaio_operation *op);

#endif
