/* backend-sync.c - runs every request inside the flush; completions still arrive through reap. */
#include "config.h"

#include "internal.h"

static int sync_init(caio_ctx *ctx, char *reason, size_t len)
{
	ctx->native_ops = CAIO_ALL_OPS;
	return 0;
}

static void sync_exit(caio_ctx *ctx)
{
}

/* Nothing to wait for afterwards: every request is finished on return. */
static int sync_submit(caio_ctx *ctx, caio_req **reqs, unsigned nr,
		       unsigned wait_nr, const struct timespec *ts)
{
	for (unsigned i = 0; i < nr; i++)
		caio__finish(ctx, reqs[i], caio__execute(reqs[i]));
	if (nr)
		caio__count_submit(ctx, nr);
	return nr;
}

/* The core reaps finished requests from its done list. */
static int sync_reap(caio_ctx *ctx, unsigned max)
{
	return 0;
}

const struct caio_backend_ops caio__backend_sync = {
	.name = "sync",
	.init = sync_init,
	.exit = sync_exit,
	.submit = sync_submit,
	.reap = sync_reap,
	.cancel = NULL,
};
