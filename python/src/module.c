/* module.c - caio._caio: module setup, backend probes and errno -> OSError conversion. */
#include "pycaio.h"

#include <errno.h>
#include <stdarg.h>

PyObject *pycaio_str_done, *pycaio_str_set_result, *pycaio_str_set_exception;
PyObject *pycaio_full_error;

/* Raise OSError(errno, message): Python picks the subclass for the errno. */
PyObject *pycaio_oserror(int negative_errno, const char *fmt, ...)
{
	PyObject *msg, *exc;
	va_list ap;

	va_start(ap, fmt);
	msg = PyUnicode_FromFormatV(fmt, ap);
	va_end(ap);
	if (!msg)
		return NULL;
	exc = PyObject_CallFunction(PyExc_OSError, "iO", -negative_errno, msg);
	Py_DECREF(msg);
	if (!exc)
		return NULL;
	PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
	Py_DECREF(exc);
	return NULL;
}

/* The one place a libcaio negative errno becomes a Python exception. */
PyObject *pycaio_error(int negative_errno, const char *what)
{
	if (negative_errno == -EBADFD)
		return pycaio_oserror(negative_errno,
			"%s: this caio context was created by another process "
			"(inherited across fork); create a new context in the child", what);
	return pycaio_oserror(negative_errno, "%s: %s", what, caio_strerror(negative_errno));
}

static PyObject *mod_probe(PyObject *module, PyObject *arg)
{
	char reason[512] = "";
	const char *name = PyUnicode_AsUTF8(arg);
	int backend, r;

	if (!name)
		return NULL;
	backend = caio_backend_from_name(name);
	if (backend < 0) {
		PyErr_Format(PyExc_ValueError, "unknown caio backend %R", arg);
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	r = caio_probe(backend, reason, sizeof(reason));
	Py_END_ALLOW_THREADS
	return Py_BuildValue("(is)", r, reason);
}

static PyObject *mod_version(PyObject *module, PyObject *unused)
{
	return PyUnicode_FromString(caio_version());
}

static PyObject *mod_strerror(PyObject *module, PyObject *arg)
{
	int err = PyLong_AsLong(arg);

	if (err == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(caio_strerror(err > 0 ? -err : err));
}

static PyMethodDef mod_methods[] = {
	{ "probe", mod_probe, METH_O,
	  "probe(backend) -> (status, reason)\n\nTry the libcaio backend; status is 0 or a "
	  "negative errno and reason says why it cannot work." },
	{ "libcaio_version", mod_version, METH_NOARGS, "the libcaio version" },
	{ "strerror", mod_strerror, METH_O, "strerror(errno) -> str" },
	{ NULL }
};

static struct PyModuleDef caio_module = {
	PyModuleDef_HEAD_INIT,
	.m_name = "caio._caio",
	.m_doc = "Native part of caio: libcaio contexts and operations.",
	.m_size = -1,
	.m_methods = mod_methods,
};

static int intern_names(void)
{
	pycaio_str_done = PyUnicode_InternFromString("done");
	pycaio_str_set_result = PyUnicode_InternFromString("set_result");
	pycaio_str_set_exception = PyUnicode_InternFromString("set_exception");
	return pycaio_str_done && pycaio_str_set_result && pycaio_str_set_exception ? 0 : -1;
}

/* caio.abstract.ContextFullError when the package is there, else BlockingIOError. */
static void find_full_error(void)
{
	PyObject *abstract = PyImport_ImportModule("caio.abstract");

	if (abstract) {
		pycaio_full_error = PyObject_GetAttrString(abstract, "ContextFullError");
		Py_DECREF(abstract);
	}
	if (!pycaio_full_error) {
		PyErr_Clear();
		pycaio_full_error = Py_NewRef(PyExc_BlockingIOError);
	}
}

static int add_type(PyObject *m, const char *name, PyTypeObject *type)
{
	if (PyType_Ready(type) < 0)
		return -1;
	Py_INCREF(type);
	if (PyModule_AddObject(m, name, (PyObject *)type) == 0)
		return 0;
	Py_DECREF(type);
	return -1;
}

PyMODINIT_FUNC PyInit__caio(void)
{
	PyObject *m;

	if (intern_names())
		return NULL;
	find_full_error();
	m = PyModule_Create(&caio_module);
	if (!m)
		return NULL;
	if (add_type(m, "Context", &pycaio_context_type) ||
	    add_type(m, "Operation", &pycaio_operation_type) ||
	    PyModule_AddIntConstant(m, "MAX_RW_COUNT", CAIO_MAX_RW_COUNT) ||
	    PyModule_AddIntConstant(m, "MAX_REQUESTS_DEFAULT", CAIO_MAX_REQUESTS_DEFAULT)) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
