/* The DNS sensor's hot loop in C: read a batch of client datagrams (recvmmsg), answer those the
 * answer cache may serve untouched (sendmmsg), count them, hand the rest back to Python.
 *
 * The pure-Python twin, and the reference, is tutela.dns.udpbatch.BatchSocket._serve_python with
 * tutela.dns.hotpath.answer_hot: same rule, same counting, same results (tests/dns/test_udpfast.py
 * compares both). Everything read from the network is hostile: every length is checked against the
 * buffers allocated once in the constructor; a datagram cut by the kernel (MSG_TRUNC) goes back as
 * b"" and is counted. Python errors while answering one datagram are counted (`hot_errors`) and
 * that datagram goes to the slow path instead; a partial sendmmsg sends the rest; a refused send is
 * counted (`send_errors`), never silent.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_SLOTS 1024
#define MAX_SIZE 65535
#define NAME_SIZE ((socklen_t)sizeof(struct sockaddr_in6))

typedef struct {
    PyObject_HEAD
    int fd;
    int ipv6;
    Py_ssize_t slots;
    Py_ssize_t size;
    struct mmsghdr *in_hdr;
    struct iovec *in_iov;
    unsigned char *in_buf;
    struct sockaddr_in6 *in_names;
    struct mmsghdr *out_hdr;
    struct iovec *out_iov;
    unsigned char *out_buf;
    struct sockaddr_in6 *out_names;
    Py_ssize_t queued;
    int busy; /* inside serve: Python code it runs (Counter, aged_fn) must not re-enter and reuse the rings */
    unsigned long long truncated;
    unsigned long long send_errors;
    unsigned long long receive_errors;
    unsigned long long hot_errors;
} HotSocket;

static PyObject *s_until, *s_age, *s_stored, *s_aged, *s_passive, *s_served, *s_rcode, *one;

static void hot_free_buffers(HotSocket *self) {
    PyMem_Free(self->in_hdr);
    PyMem_Free(self->in_iov);
    PyMem_Free(self->in_buf);
    PyMem_Free(self->in_names);
    PyMem_Free(self->out_hdr);
    PyMem_Free(self->out_iov);
    PyMem_Free(self->out_buf);
    PyMem_Free(self->out_names);
    self->in_hdr = self->out_hdr = NULL;
    self->in_iov = self->out_iov = NULL;
    self->in_buf = self->out_buf = NULL;
    self->in_names = self->out_names = NULL;
}

static int hot_init(HotSocket *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"fd", "ipv6", "slots", "size", NULL};
    int fd, ipv6;
    Py_ssize_t slots, size;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ipnn", kwlist, &fd, &ipv6, &slots, &size))
        return -1;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "HotSocket re-initialised while serving");
        return -1;
    }
    if (fd < 0 || slots < 1 || slots > MAX_SLOTS || size < 12 || size > MAX_SIZE) {
        PyErr_Format(PyExc_ValueError, "HotSocket: fd >= 0, 1 <= slots <= %d, 12 <= size <= %d", MAX_SLOTS,
                     MAX_SIZE);
        return -1;
    }
    hot_free_buffers(self);
    self->fd = fd;
    self->ipv6 = ipv6;
    self->slots = slots;
    self->size = size;
    self->queued = 0;
    self->in_hdr = PyMem_Calloc((size_t)slots, sizeof(struct mmsghdr));
    self->in_iov = PyMem_Calloc((size_t)slots, sizeof(struct iovec));
    self->in_buf = PyMem_Calloc((size_t)slots, (size_t)size);
    self->in_names = PyMem_Calloc((size_t)slots, sizeof(struct sockaddr_in6));
    self->out_hdr = PyMem_Calloc((size_t)slots, sizeof(struct mmsghdr));
    self->out_iov = PyMem_Calloc((size_t)slots, sizeof(struct iovec));
    self->out_buf = PyMem_Calloc((size_t)slots, (size_t)size);
    self->out_names = PyMem_Calloc((size_t)slots, sizeof(struct sockaddr_in6));
    if (!self->in_hdr || !self->in_iov || !self->in_buf || !self->in_names || !self->out_hdr || !self->out_iov ||
        !self->out_buf || !self->out_names) {
        hot_free_buffers(self);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < slots; i++) {
        self->in_iov[i].iov_base = self->in_buf + i * size;
        self->in_iov[i].iov_len = (size_t)size;
        self->in_hdr[i].msg_hdr.msg_iov = &self->in_iov[i];
        self->in_hdr[i].msg_hdr.msg_iovlen = 1;
        self->in_hdr[i].msg_hdr.msg_name = &self->in_names[i];
        self->out_iov[i].iov_base = self->out_buf + i * size;
        self->out_hdr[i].msg_hdr.msg_iov = &self->out_iov[i];
        self->out_hdr[i].msg_hdr.msg_iovlen = 1;
        self->out_hdr[i].msg_hdr.msg_name = &self->out_names[i];
    }
    return 0;
}

static void hot_dealloc(HotSocket *self) {
    hot_free_buffers(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* One datagram now (sendto); EINTR retried, any other failure counted. */
static void send_one(HotSocket *self, const void *data, size_t len, const void *name, socklen_t namelen) {
    for (;;) {
        if (sendto(self->fd, data, len, MSG_DONTWAIT, (const struct sockaddr *)name, namelen) >= 0)
            return;
        if (errno != EINTR) {
            self->send_errors++;
            return;
        }
    }
}

/* Send every queued reply: a partial sendmmsg sends the rest; one the kernel refuses is counted and skipped. */
static void flush(HotSocket *self) {
    Py_ssize_t queued = self->queued, done = 0;
    self->queued = 0;
    if (queued == 1) {
        struct msghdr *h = &self->out_hdr[0].msg_hdr;
        send_one(self, self->out_iov[0].iov_base, self->out_iov[0].iov_len, h->msg_name, h->msg_namelen);
        return;
    }
    while (done < queued) {
        int sent = sendmmsg(self->fd, self->out_hdr + done, (unsigned int)(queued - done), MSG_DONTWAIT);
        if (sent > 0) {
            done += sent;
        } else if (sent < 0 && errno == EINTR) {
            continue;
        } else {
            self->send_errors++; /* the first unsent one failed: skip it */
            done++;
        }
    }
}

/* Queue `id` (2 bytes) + `body` to the address of receive slot `i`; too large for a slot: sent at once. */
static void push(HotSocket *self, const unsigned char *id, const char *body, Py_ssize_t blen, Py_ssize_t i) {
    struct msghdr *in = &self->in_hdr[i].msg_hdr;
    if (blen > self->size - 2) {
        unsigned char *whole = PyMem_Malloc((size_t)blen + 2);
        if (whole == NULL) {
            self->send_errors++;
            return;
        }
        memcpy(whole, id, 2);
        memcpy(whole + 2, body, (size_t)blen);
        send_one(self, whole, (size_t)blen + 2, in->msg_name, in->msg_namelen);
        PyMem_Free(whole);
        return;
    }
    Py_ssize_t k = self->queued;
    unsigned char *slot = self->out_buf + k * self->size;
    memcpy(slot, id, 2);
    memcpy(slot + 2, body, (size_t)blen);
    self->out_iov[k].iov_len = (size_t)blen + 2;
    memcpy(&self->out_names[k], in->msg_name, in->msg_namelen);
    self->out_hdr[k].msg_hdr.msg_namelen = in->msg_namelen;
    self->queued = k + 1;
    if (self->queued == self->slots)
        flush(self);
}

/* The (host) string of the sender of slot i, as socket.inet_ntop gives it; NULL with ValueError when short. */
static PyObject *sender_host(HotSocket *self, Py_ssize_t i) {
    char text[INET6_ADDRSTRLEN];
    socklen_t namelen = self->in_hdr[i].msg_hdr.msg_namelen;
    const unsigned char *raw = (const unsigned char *)&self->in_names[i];
    const char *ok;
    if (self->ipv6) {
        if (namelen < 24) {
            PyErr_SetString(PyExc_ValueError, "invalid length of packed IP address string");
            return NULL;
        }
        ok = inet_ntop(AF_INET6, raw + 8, text, sizeof text);
    } else {
        if (namelen < 8) {
            PyErr_SetString(PyExc_ValueError, "invalid length of packed IP address string");
            return NULL;
        }
        ok = inet_ntop(AF_INET, raw + 4, text, sizeof text);
    }
    if (ok == NULL) {
        PyErr_SetFromErrno(PyExc_OSError);
        return NULL;
    }
    return PyUnicode_FromString(text);
}

/* entry.until <= now, as Python compares them: 1 yes, 0 no, -1 error. */
static int expired(PyObject *entry, PyObject *now_obj) {
    PyObject *until = PyObject_GetAttr(entry, s_until);
    if (until == NULL)
        return -1;
    int le = PyObject_RichCompareBool(until, now_obj, Py_LE);
    Py_DECREF(until);
    return le;
}

/* The entry's answer without its id, TTLs aged: entry.aged when entry.age == int(now - entry.stored),
 * else aged_fn(entry, now). New reference, or NULL with an exception. */
static PyObject *aged_body(PyObject *entry, PyObject *now_obj, PyObject *aged_fn) {
    PyObject *stored = PyObject_GetAttr(entry, s_stored);
    if (stored == NULL)
        return NULL;
    PyObject *diff = PyNumber_Subtract(now_obj, stored);
    Py_DECREF(stored);
    if (diff == NULL)
        return NULL;
    PyObject *age_now = PyNumber_Long(diff); /* int(now - stored): raises on nan/inf as Python does */
    Py_DECREF(diff);
    if (age_now == NULL)
        return NULL;
    PyObject *age = PyObject_GetAttr(entry, s_age);
    if (age == NULL) {
        Py_DECREF(age_now);
        return NULL;
    }
    int same = PyObject_RichCompareBool(age, age_now, Py_EQ);
    Py_DECREF(age);
    Py_DECREF(age_now);
    if (same < 0)
        return NULL;
    if (same)
        return PyObject_GetAttr(entry, s_aged);
    return PyObject_CallFunctionObjArgs(aged_fn, entry, now_obj, NULL);
}

/* The counting of one answered datagram: passive DNS (entry.served) and top clients. 0, or -1 with an exception. */
static int count_one(HotSocket *self, Py_ssize_t i, PyObject *entry, PyObject *clients, PyObject *served,
                     PyObject **host_memo, Py_ssize_t *memo_slot) {
    PyObject *passive = PyObject_GetAttr(entry, s_passive);
    if (passive == NULL)
        return -1;
    int any = PyObject_IsTrue(passive);
    Py_DECREF(passive);
    if (any < 0)
        return -1;
    if (any) {
        PyObject *count = PyObject_GetAttr(entry, s_served);
        if (count == NULL)
            return -1;
        int zero = PyObject_Not(count);
        if (zero < 0 || (zero && PyList_Append(served, entry) < 0)) {
            Py_DECREF(count);
            return -1;
        }
        PyObject *more = PyNumber_Add(count, one);
        Py_DECREF(count);
        if (more == NULL)
            return -1;
        int bad = PyObject_SetAttr(entry, s_served, more);
        Py_DECREF(more);
        if (bad < 0)
            return -1;
    }
    /* the same sender as the previous hot datagram of this batch: its host string again */
    struct msghdr *h = &self->in_hdr[i].msg_hdr;
    if (*host_memo == NULL || h->msg_namelen != self->in_hdr[*memo_slot].msg_hdr.msg_namelen ||
        memcmp(h->msg_name, self->in_hdr[*memo_slot].msg_hdr.msg_name, h->msg_namelen) != 0) {
        PyObject *host = sender_host(self, i);
        if (host == NULL)
            return -1;
        Py_XSETREF(*host_memo, host);
        *memo_slot = i;
    }
    PyObject *n = PyObject_GetItem(clients, *host_memo); /* a Counter: __missing__ gives 0 */
    if (n == NULL)
        return -1;
    PyObject *more = PyNumber_Add(n, one);
    Py_DECREF(n);
    if (more == NULL)
        return -1;
    int bad = PyObject_SetItem(clients, *host_memo, more);
    Py_DECREF(more);
    return bad;
}

/* Only Exception subclasses are absorbed (counted) on the data path; anything else stops the call. */
static int absorb(HotSocket *self) {
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return -1;
    PyErr_Clear();
    self->hot_errors++;
    return 0;
}

PyDoc_STRVAR(serve_doc,
             "serve(entries, clients, served, monotonic, aged) -> (rcodes, rest, now, received) | None\n\n"
             "Read up to `slots` waiting datagrams (one recvmmsg); answer each whose entries.get(data[2:]) is\n"
             "an answer-cache entry with until > now (now = monotonic() after the read): its aged body with the\n"
             "query's id, sent with sendmmsg; count it in `clients` (host -> n) and, when it has passive keys,\n"
             "in `served`. Returns the answered rcodes (bytes), the other datagrams as (data, raw address)\n"
             "(data b\"\" when cut by the kernel), now, and how many datagrams were read; None when none waited.");

static PyObject *serve_batch(HotSocket *self, PyObject *entries, PyObject *clients, PyObject *served,
                             PyObject *monotonic, PyObject *aged_fn);

static PyObject *hot_serve(HotSocket *self, PyObject *args) {
    PyObject *entries, *clients, *served, *monotonic, *aged_fn;
    if (!PyArg_ParseTuple(args, "O!OO!OO:serve", &PyDict_Type, &entries, &clients, &PyList_Type, &served, &monotonic,
                          &aged_fn))
        return NULL;
    if (self->in_hdr == NULL) {
        PyErr_SetString(PyExc_ValueError, "HotSocket not initialised");
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "HotSocket.serve re-entered");
        return NULL;
    }
    self->busy = 1;
    PyObject *out = serve_batch(self, entries, clients, served, monotonic, aged_fn);
    self->busy = 0;
    return out;
}

static PyObject *serve_batch(HotSocket *self, PyObject *entries, PyObject *clients, PyObject *served,
                             PyObject *monotonic, PyObject *aged_fn) {
    for (Py_ssize_t i = 0; i < self->slots; i++) { /* the kernel shortens these to what it wrote */
        self->in_hdr[i].msg_hdr.msg_namelen = NAME_SIZE;
        self->in_hdr[i].msg_hdr.msg_flags = 0;
        self->in_hdr[i].msg_len = 0;
    }
    int got;
    do {
        got = recvmmsg(self->fd, self->in_hdr, (unsigned int)self->slots, MSG_DONTWAIT, NULL);
    } while (got < 0 && errno == EINTR);
    if (got <= 0) {
        if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            self->receive_errors++;
        Py_RETURN_NONE;
    }
    if (got > self->slots) /* never, by the kernel's contract; bounded all the same */
        got = (int)self->slots;
    PyObject *now_obj = PyObject_CallNoArgs(monotonic);
    if (now_obj == NULL)
        return NULL;
    PyObject *rest = PyList_New(0);
    unsigned char *rcodes = PyMem_Malloc((size_t)got);
    PyObject *host_memo = NULL;
    Py_ssize_t memo_slot = 0, hot = 0;
    if (rest == NULL || rcodes == NULL) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < got; i++) {
        struct msghdr *h = &self->in_hdr[i].msg_hdr;
        const unsigned char *data = self->in_buf + i * self->size;
        Py_ssize_t len = (Py_ssize_t)self->in_hdr[i].msg_len;
        PyObject *entry = NULL;
        if (h->msg_namelen > NAME_SIZE)
            h->msg_namelen = NAME_SIZE;
        if (h->msg_flags & MSG_TRUNC) { /* cut by the kernel: b"" for the slow path, which drops it */
            self->truncated++;
            len = 0;
        } else if (len > self->size) {
            len = self->size;
        }
        PyObject *key = PyBytes_FromStringAndSize((const char *)data + (len >= 2 ? 2 : len), len >= 2 ? len - 2 : 0);
        if (key == NULL)
            goto fail;
        entry = PyDict_GetItemWithError(entries, key);
        Py_DECREF(key);
        if (entry == NULL && PyErr_Occurred() && absorb(self) < 0)
            goto fail;
        Py_XINCREF(entry);
        if (entry != NULL) {
            int done = -1; /* 1: answered, 0: slow path, -1: error */
            PyObject *body = NULL;
            PyObject *rcode_obj = NULL;
            int stale = expired(entry, now_obj);
            if (stale == 0 && (body = aged_body(entry, now_obj, aged_fn)) != NULL &&
                (rcode_obj = PyObject_GetAttr(entry, s_rcode)) != NULL) {
                long rcode = PyLong_AsLong(rcode_obj);
                if (rcode == -1 && PyErr_Occurred()) {
                    /* counted below; the slow path answers it */
                } else if (rcode < 0 || rcode > 255 || !PyBytes_Check(body)) {
                    PyErr_SetString(PyExc_ValueError, "answer-cache entry: bad rcode or body");
                } else {
                    push(self, data, PyBytes_AS_STRING(body), PyBytes_GET_SIZE(body), i);
                    rcodes[hot++] = (unsigned char)rcode;
                    done = 1;
                    if (count_one(self, i, entry, clients, served, &host_memo, &memo_slot) < 0 && absorb(self) < 0) {
                        Py_DECREF(body);
                        Py_DECREF(rcode_obj);
                        Py_DECREF(entry);
                        goto fail;
                    }
                }
            } else if (stale == 1) {
                done = 0;
            }
            Py_XDECREF(body);
            Py_XDECREF(rcode_obj);
            Py_DECREF(entry);
            if (done == 1)
                continue;
            if (done < 0 && absorb(self) < 0) /* counted; the slow path answers it */
                goto fail;
        }
        PyObject *item = Py_BuildValue("(y#y#)", (const char *)data, len,
                                       (const char *)h->msg_name, (Py_ssize_t)h->msg_namelen);
        if (item == NULL)
            goto fail;
        int bad = PyList_Append(rest, item);
        Py_DECREF(item);
        if (bad < 0)
            goto fail;
    }
    flush(self);
    Py_XDECREF(host_memo);
    PyObject *result = Py_BuildValue("(y#NNi)", (const char *)rcodes, hot, rest, now_obj, got);
    PyMem_Free(rcodes);
    return result;
fail:
    flush(self); /* what was answered still goes out */
    Py_XDECREF(host_memo);
    Py_XDECREF(rest);
    Py_DECREF(now_obj);
    PyMem_Free(rcodes);
    return NULL;
}

PyDoc_STRVAR(send_doc, "send(data, name) -> None\n\nOne datagram to a raw struct sockaddr now (failures counted in send_errors).");

static PyObject *hot_send(HotSocket *self, PyObject *args) {
    Py_buffer data, name;
    if (self->in_hdr == NULL) {
        PyErr_SetString(PyExc_ValueError, "HotSocket not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*y*:send", &data, &name))
        return NULL;
    if (name.len < (Py_ssize_t)sizeof(sa_family_t) || name.len > (Py_ssize_t)NAME_SIZE)
        self->send_errors++;
    else
        send_one(self, data.buf, (size_t)data.len, name.buf, (socklen_t)name.len);
    PyBuffer_Release(&data);
    PyBuffer_Release(&name);
    Py_RETURN_NONE;
}

static PyMethodDef hot_methods[] = {
    {"serve", (PyCFunction)hot_serve, METH_VARARGS, serve_doc},
    {"send", (PyCFunction)hot_send, METH_VARARGS, send_doc},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef hot_members[] = {
    {"slots", T_PYSSIZET, offsetof(HotSocket, slots), READONLY, "datagrams per batch"},
    {"truncated", T_ULONGLONG, offsetof(HotSocket, truncated), READONLY, "datagrams larger than a slot, refused"},
    {"send_errors", T_ULONGLONG, offsetof(HotSocket, send_errors), READONLY, "replies the kernel refused"},
    {"receive_errors", T_ULONGLONG, offsetof(HotSocket, receive_errors), READONLY, "failed reads other than EAGAIN"},
    {"hot_errors", T_ULONGLONG, offsetof(HotSocket, hot_errors), READONLY,
     "Python errors while answering a datagram (it then took the slow path)"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject HotSocketType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tutela._native.udpfast.HotSocket",
    .tp_doc = PyDoc_STR("HotSocket(fd, ipv6, slots, size): the hot loop on a bound non-blocking UDP socket it does "
                        "not own (never closed here)."),
    .tp_basicsize = sizeof(HotSocket),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)hot_init,
    .tp_dealloc = (destructor)hot_dealloc,
    .tp_methods = hot_methods,
    .tp_members = hot_members,
};

static struct PyModuleDef udpfast_module = {
    PyModuleDef_HEAD_INIT, "udpfast", "The DNS sensor's hot UDP loop (see udpfast.c); twin: tutela.dns.udpbatch.",
    -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_udpfast(void) {
    if (PyType_Ready(&HotSocketType) < 0)
        return NULL;
    if (!s_until && (!(s_until = PyUnicode_InternFromString("until")) || !(s_age = PyUnicode_InternFromString("age")) ||
                     !(s_stored = PyUnicode_InternFromString("stored")) ||
                     !(s_aged = PyUnicode_InternFromString("aged")) ||
                     !(s_passive = PyUnicode_InternFromString("passive")) ||
                     !(s_served = PyUnicode_InternFromString("served")) ||
                     !(s_rcode = PyUnicode_InternFromString("rcode")) || !(one = PyLong_FromLong(1))))
        return NULL;
    PyObject *m = PyModule_Create(&udpfast_module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&HotSocketType);
    if (PyModule_AddObject(m, "HotSocket", (PyObject *)&HotSocketType) < 0) {
        Py_DECREF(&HotSocketType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
