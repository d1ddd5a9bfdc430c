/* The tunnel window's per-query update (tutela/dns/window.py, TunnelWindow.observe_reportable_python), in C.
 *
 * It runs on every query, verdict-cache hits included, and in Python it was most of a hit's cost. This does
 * the same steps on the same Python objects, so the state stays the Python window's (observe() and the Python
 * twin read and write it too): the keys OrderedDict (get, move_to_end, popitem(False)), each key's _Key (its
 * events deque of (now, size, hash(sub), tunnel_qtype, entropy, confidence) tuples, its digests dict and its
 * running totals), and a WindowEvidence built where the twin builds one.
 *
 * observe_reportable(keys, params, key_class, evidence_class, tunnel_qtypes,
 *                    client, registrable, sub, qtype, entropy, confidence, now)
 * params = (window_s, max_events, max_keys, min_rate_span_s, bytes_per_minute, fan_out, entropy_threshold).
 * Floats: the same double operations in the same order as the twin (Python's float arithmetic is IEEE double;
 * its int/int and int-with-float operations convert exactly for the small ints here), so bit-identical totals.
 * Where `now`, `entropy` or `confidence` is not a float it returns NotImplemented and the caller runs the twin.
 * Input is hostile: every object's type and size is checked, every C-API result checked and errors propagated.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *S_append, *S_popleft, *S_move_to_end, *S_popitem;
static PyObject *S_events, *S_digests, *S_bytes, *S_qtypes, *S_entropy, *S_confidence, *S_level;
static PyObject *S_low, *S_medium, *S_high;

/* An attribute of a _Key that must be an int (bytes, qtypes) or a float-convertible number (totals). */
static int get_ll(PyObject *obj, PyObject *name, long long *out) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) return -1;
    *out = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int get_double(PyObject *obj, PyObject *name, double *out) {
    PyObject *v = PyObject_GetAttr(obj, name);
    if (v == NULL) return -1;
    *out = PyFloat_AsDouble(v);
    Py_DECREF(v);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

static int set_ll(PyObject *obj, PyObject *name, long long value) {
    PyObject *v = PyLong_FromLongLong(value);
    if (v == NULL) return -1;
    int rc = PyObject_SetAttr(obj, name, v);
    Py_DECREF(v);
    return rc;
}

static int set_double(PyObject *obj, PyObject *name, double value) {
    PyObject *v = PyFloat_FromDouble(value);
    if (v == NULL) return -1;
    int rc = PyObject_SetAttr(obj, name, v);
    Py_DECREF(v);
    return rc;
}

/* events[0], checked to be a 6-tuple (borrowed from the new reference the caller releases). */
static PyObject *first_event(PyObject *events) {
    PyObject *first = PySequence_GetItem(events, 0);
    if (first == NULL) return NULL;
    if (!PyTuple_Check(first) || PyTuple_GET_SIZE(first) != 6) {
        Py_DECREF(first);
        PyErr_SetString(PyExc_TypeError, "tunnel window event: expected a 6-tuple");
        return NULL;
    }
    return first;
}

static PyObject *observe_reportable(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    (void)module;
    if (nargs != 12) {
        PyErr_SetString(PyExc_TypeError, "observe_reportable takes 12 arguments");
        return NULL;
    }
    PyObject *keys = args[0], *params = args[1], *key_class = args[2], *evidence_class = args[3];
    PyObject *qtypes = args[4], *client = args[5], *registrable = args[6], *sub = args[7], *qtype = args[8];
    PyObject *entropy_o = args[9], *confidence_o = args[10], *now_o = args[11];
    if (!PyFloat_Check(now_o) || !PyFloat_Check(entropy_o) || !PyFloat_Check(confidence_o)) {
        Py_RETURN_NOTIMPLEMENTED;  /* the twin handles other number types */
    }
    if (!PyDict_Check(keys) || !PyTuple_Check(params) || PyTuple_GET_SIZE(params) != 7 || !PyUnicode_Check(sub)) {
        PyErr_SetString(PyExc_TypeError, "observe_reportable: bad keys, params or sub");
        return NULL;
    }
    double window_s = PyFloat_AsDouble(PyTuple_GET_ITEM(params, 0));
    Py_ssize_t max_events = PyLong_AsSsize_t(PyTuple_GET_ITEM(params, 1));
    Py_ssize_t max_keys = PyLong_AsSsize_t(PyTuple_GET_ITEM(params, 2));
    double min_span = PyFloat_AsDouble(PyTuple_GET_ITEM(params, 3));
    double bpm_threshold = PyFloat_AsDouble(PyTuple_GET_ITEM(params, 4));
    double fan_out = PyFloat_AsDouble(PyTuple_GET_ITEM(params, 5));
    double entropy_threshold = PyFloat_AsDouble(PyTuple_GET_ITEM(params, 6));
    if (PyErr_Occurred()) return NULL;
    double now = PyFloat_AS_DOUBLE(now_o), entropy = PyFloat_AS_DOUBLE(entropy_o);
    double confidence = PyFloat_AS_DOUBLE(confidence_o);

    PyObject *result = NULL, *key = NULL, *state = NULL, *events = NULL, *digests = NULL, *digest_o = NULL;
    PyObject *size_o = NULL, *event = NULL, *tmp = NULL;
    key = PyTuple_Pack(2, client, registrable);
    if (key == NULL) return NULL;
    state = PyDict_GetItemWithError(keys, key); /* borrowed; an OrderedDict is a dict for reading */
    if (state == NULL) {
        if (PyErr_Occurred()) goto done;
        state = PyObject_CallNoArgs(key_class);
        if (state == NULL) goto done;
        if (PyObject_SetItem(keys, key, state) < 0) goto done;
        Py_ssize_t nkeys = PyObject_Size(keys);
        if (nkeys < 0) goto done;
        if (nkeys > max_keys) {
            tmp = PyObject_CallMethodOneArg(keys, S_popitem, Py_False);
            if (tmp == NULL) goto done;
            Py_CLEAR(tmp);
        }
    } else {
        Py_INCREF(state);
        tmp = PyObject_CallMethodOneArg(keys, S_move_to_end, key);
        if (tmp == NULL) goto done;
        Py_CLEAR(tmp);
    }
    Py_hash_t digest = PyObject_Hash(sub);
    if (digest == -1 && PyErr_Occurred()) goto done;
    Py_ssize_t size = PyUnicode_GET_LENGTH(sub);
    int tunnel_qtype = PySet_Contains(qtypes, qtype);
    if (tunnel_qtype < 0) goto done;
    events = PyObject_GetAttr(state, S_events);
    if (events == NULL) goto done;
    digests = PyObject_GetAttr(state, S_digests);
    if (digests == NULL) goto done;
    if (!PyDict_Check(digests)) {
        PyErr_SetString(PyExc_TypeError, "tunnel window: digests must be a dict");
        goto done;
    }
    digest_o = PyLong_FromSsize_t(digest);
    size_o = PyLong_FromSsize_t(size);
    if (digest_o == NULL || size_o == NULL) goto done;
    event = PyTuple_Pack(6, now_o, size_o, digest_o, tunnel_qtype ? Py_True : Py_False, entropy_o, confidence_o);
    if (event == NULL) goto done;
    tmp = PyObject_CallMethodOneArg(events, S_append, event);
    if (tmp == NULL) goto done;
    Py_CLEAR(tmp);
    {
        PyObject *count = PyDict_GetItemWithError(digests, digest_o);
        long long c = 0;
        if (count == NULL && PyErr_Occurred()) goto done;
        if (count != NULL && (c = PyLong_AsLongLong(count)) == -1 && PyErr_Occurred()) goto done;
        tmp = PyLong_FromLongLong(c + 1);
        if (tmp == NULL || PyDict_SetItem(digests, digest_o, tmp) < 0) goto done;
        Py_CLEAR(tmp);
    }
    long long total_bytes, qtypes_n;
    double total_entropy, total_confidence;
    if (get_ll(state, S_bytes, &total_bytes) < 0 || get_ll(state, S_qtypes, &qtypes_n) < 0 ||
        get_double(state, S_entropy, &total_entropy) < 0 || get_double(state, S_confidence, &total_confidence) < 0)
        goto done;
    /* added to and then taken from in the twin's order: the same doubles */
    total_bytes += size;
    qtypes_n += tunnel_qtype;
    total_entropy += entropy;
    total_confidence += confidence;
    double horizon = now - window_s;
    Py_ssize_t n = PyObject_Size(events);
    if (n < 0) goto done;
    while (n > 0) {
        PyObject *first = first_event(events);
        if (first == NULL) goto done;
        double t0 = PyFloat_AsDouble(PyTuple_GET_ITEM(first, 0));
        Py_DECREF(first);
        if (t0 == -1.0 && PyErr_Occurred()) goto done;
        if (!(n > max_events || t0 < horizon)) break;
        PyObject *old = PyObject_CallMethodNoArgs(events, S_popleft);
        if (old == NULL) goto done;
        if (!PyTuple_Check(old) || PyTuple_GET_SIZE(old) != 6) {
            Py_DECREF(old);
            PyErr_SetString(PyExc_TypeError, "tunnel window event: expected a 6-tuple");
            goto done;
        }
        n -= 1;
        PyObject *old_digest = PyTuple_GET_ITEM(old, 2);
        PyObject *count = PyDict_GetItemWithError(digests, old_digest); /* borrowed */
        long long left = 0;
        if (count == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, old_digest);
            Py_DECREF(old);
            goto done;
        }
        left = PyLong_AsLongLong(count) - 1;
        int rc;
        if (left == -2 && PyErr_Occurred()) {
            rc = -1;
        } else if (left) {
            tmp = PyLong_FromLongLong(left);
            rc = tmp == NULL ? -1 : PyDict_SetItem(digests, old_digest, tmp);
            Py_CLEAR(tmp);
        } else {
            rc = PyDict_DelItem(digests, old_digest);
        }
        long long old_size = rc < 0 ? 0 : PyLong_AsLongLong(PyTuple_GET_ITEM(old, 1));
        int old_qtype = rc < 0 ? 0 : PyObject_IsTrue(PyTuple_GET_ITEM(old, 3));
        double old_entropy = rc < 0 ? 0.0 : PyFloat_AsDouble(PyTuple_GET_ITEM(old, 4));
        double old_confidence = rc < 0 ? 0.0 : PyFloat_AsDouble(PyTuple_GET_ITEM(old, 5));
        Py_DECREF(old);
        if (rc < 0 || old_qtype < 0 || PyErr_Occurred()) goto done;
        total_bytes -= old_size;
        qtypes_n -= old_qtype;
        total_entropy -= old_entropy;
        total_confidence -= old_confidence;
    }
    if (set_ll(state, S_bytes, total_bytes) < 0 || set_ll(state, S_qtypes, qtypes_n) < 0 ||
        set_double(state, S_entropy, total_entropy) < 0 || set_double(state, S_confidence, total_confidence) < 0)
        goto done;
    if (n < 3) { /* every level needs 3 queries */
        if (PyObject_SetAttr(state, S_level, Py_None) < 0) goto done;
        result = Py_NewRef(Py_None);
        goto done;
    }
    double conf = total_confidence / (double)n;
    long points = conf >= 0.7 ? 2 : conf >= 0.5 ? 1 : 0;
    Py_ssize_t distinct = PyDict_GET_SIZE(digests);
    if ((double)distinct >= fan_out && (double)distinct >= 0.8 * (double)n) points += 1;
    double span;
    {
        PyObject *first = first_event(events);
        if (first == NULL) goto done;
        double t0 = PyFloat_AsDouble(PyTuple_GET_ITEM(first, 0));
        Py_DECREF(first);
        if (t0 == -1.0 && PyErr_Occurred()) goto done;
        span = now - t0;
    }
    if (span < min_span) span = min_span;
    double bpm = (double)total_bytes * 60.0 / span;
    if (bpm >= bpm_threshold) points += 1;
    double qshare = (double)qtypes_n / (double)n;
    if (qshare >= 0.5) points += 1;
    double ent = total_entropy / (double)n;
    if (ent >= entropy_threshold) points += 1;
    PyObject *level = points < 2 ? Py_None : points == 2 ? S_low : (points == 3 || n < 4) ? S_medium : S_high;
    PyObject *previous = PyObject_GetAttr(state, S_level);
    if (previous == NULL) goto done;
    int changed = PyObject_RichCompareBool(level, previous, Py_NE);
    Py_DECREF(previous);
    if (changed < 0) goto done;
    if (PyObject_SetAttr(state, S_level, level) < 0) goto done;
    if (level == Py_None || (level != S_high && !changed)) {
        result = Py_NewRef(Py_None); /* nothing a caller reports: no evidence built */
        goto done;
    }
    result = PyObject_CallFunction(evidence_class, "nnddddlOO", n, distinct, bpm, qshare, ent, conf, points, level,
                                   changed ? Py_True : Py_False);
done:
    Py_XDECREF(key);
    Py_XDECREF(state);
    Py_XDECREF(events);
    Py_XDECREF(digests);
    Py_XDECREF(digest_o);
    Py_XDECREF(size_o);
    Py_XDECREF(event);
    Py_XDECREF(tmp);
    return result;
}

static PyMethodDef methods[] = {
    {"observe_reportable", (PyCFunction)(void (*)(void))observe_reportable, METH_FASTCALL,
     "TunnelWindow.observe_reportable_python's update and result on the same objects; NotImplemented where "
     "now, entropy or confidence is not a float."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "tunnelwindow",
                                       "The tunnel window's per-query update in C (twin: tutela.dns.window).", -1,
                                       methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_tunnelwindow(void) {
    struct { PyObject **slot; const char *text; } names[] = {
        {&S_append, "append"}, {&S_popleft, "popleft"}, {&S_move_to_end, "move_to_end"}, {&S_popitem, "popitem"},
        {&S_events, "events"}, {&S_digests, "digests"}, {&S_bytes, "bytes"}, {&S_qtypes, "qtypes"},
        {&S_entropy, "entropy"}, {&S_confidence, "confidence"}, {&S_level, "level"}, {&S_low, "low"},
        {&S_medium, "medium"}, {&S_high, "high"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (*names[i].slot == NULL && (*names[i].slot = PyUnicode_InternFromString(names[i].text)) == NULL)
            return NULL;
    }
    return PyModule_Create(&moduledef);
}
