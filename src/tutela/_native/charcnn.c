/* The character CNN's forward pass for one name (tutela/dns/charcnn.py, CharCnn.logit_one), in C.
 *
 * numpy's per-call overhead dominates at one name per call; this does the same arithmetic without it.
 * Net(table, bias, w_hidden, b_hidden, w_out, b_out, kmax) keeps the float32 arrays CharCnn builds (buffer
 * protocol, C-contiguous, shapes checked here); Net.logit(ids) takes one name's token ids (bytes).
 *
 * The same float32 operations in the same order as the numpy twin (CharCnn.logit_one_numpy):
 * - gather-sum: TABLE[0..kmax-1] rows added left to right, max over positions; past the end of the name the
 *   END row (id vocab - 1, -inf for the kernels that do not fit) pads the windows;
 * - hidden layer, `z @ w_hidden` (numpy: OpenBLAS sgemv): per output, blocks of 8 inputs each summed by fused
 *   multiply-adds from zero, each block's sum then added to the output;
 * - output, `hid @ w_out` (numpy: OpenBLAS sdot): 4 x 8 fused multiply-add accumulators over chunks of 32,
 *   reduced as that kernel reduces them.
 * That is OpenBLAS's order on x86-64 with AVX2 (its Haswell/Zen kernels, which numpy's wheels pick on such
 * CPUs); fmaf and _mm256_fmadd_ps round once, as its FMA instructions do, so the logits are bit-identical
 * there (tests/dns_models/test_charcnn_native.py). Elsewhere (another BLAS kernel) numpy's own sums differ
 * by a few float32 ulps, and so does this.
 *
 * So the kernel needs AVX2 and FMA: KERNEL is "avx2+fma" where the CPU has them, else "" and Net refuses
 * to be built (the caller then keeps numpy). Input is hostile: every id is checked against the vocabulary,
 * nothing is read out of bounds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_KERNEL 1
#else
#define HAVE_AVX2_KERNEL 0
#endif

#define MAX_KMAX 64   /* widest kernel accepted: the row pointers of one window live on the stack */
#define MAX_VOCAB 256 /* ids are bytes */
#define BLOCK 8       /* inputs per fused sum in the hidden layer (OpenBLAS sgemv_n's 4x8 kernel) */

/* Vectors of 8 floats (GCC/clang vector extensions): element-wise IEEE adds and selects, each filter's
 * result is the scalar loop's, bit for bit. */
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));
/* unaligned loads and stores (memcpy compiles to one vector move); macros, not functions: a function
 * returning a 32-byte vector would change the ABI outside the AVX2 kernel */
#define LOAD8(dst, p) memcpy(&(dst), (p), sizeof(v8f))
#define STORE8(p, src) memcpy((p), &(src), sizeof(v8f))

typedef struct {
    PyObject_HEAD
    Py_buffer table;    /* (kmax * vocab, filters): row t * vocab + id is TABLE[t][id] */
    Py_buffer bias;     /* (filters,) */
    Py_buffer w_hidden; /* (filters, hidden) */
    Py_buffer b_hidden; /* (hidden,) */
    Py_buffer w_out;    /* (hidden,) */
    float b_out;
    Py_ssize_t vocab, kmax, filters, hidden;
    float *scratch; /* filters (running max, then z) + hidden; used with the GIL held, never released */
} Net;

static int has_kernel; /* the CPU has AVX2 and FMA: set once at import */

/* mx[f] = max over positions i of the sum over t (left to right) of TABLE[t][id(i + t)][f], id(j) = END
 * past the name. Every id is < vocab (checked by the caller), so every row lies inside the table. */
static inline __attribute__((always_inline)) void max_pool(const float *table, const unsigned char *ids,
                                                           Py_ssize_t n, Py_ssize_t vocab, Py_ssize_t kmax,
                                                           Py_ssize_t F, float *mx) {
    const unsigned char end = (unsigned char)(vocab - 1);
    const float *rows[MAX_KMAX];
    const Py_ssize_t F8 = F - F % 8;
    for (Py_ssize_t f = 0; f < F; f++) {
        mx[f] = -INFINITY;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        for (Py_ssize_t t = 0; t < kmax; t++) {
            unsigned char id = i + t < n ? ids[i + t] : end;
            rows[t] = table + ((size_t)t * (size_t)vocab + id) * (size_t)F;
        }
        for (Py_ssize_t f = 0; f < F8; f += 8) {
            v8f s, r, m;
            LOAD8(s, rows[0] + f);
            for (Py_ssize_t t = 1; t < kmax; t++) {
                LOAD8(r, rows[t] + f);
                s += r;
            }
            LOAD8(m, mx + f);
            v8i gt = s > m; /* s > m ? s : m per element, as the scalar tail and numpy's max */
            m = (v8f)(((v8i)s & gt) | ((v8i)m & ~gt));
            STORE8(mx + f, m);
        }
        for (Py_ssize_t f = F8; f < F; f++) {
            float s = rows[0][f];
            for (Py_ssize_t t = 1; t < kmax; t++) {
                s += rows[t][f];
            }
            mx[f] = s > mx[f] ? s : mx[f];
        }
    }
}

/* z = relu(mx + bias) in place; the indices of the nonzero z of block [c, c + BLOCK) go to nz (a zero input
 * adds exactly nothing to a fused sum of finite weights, so it is skipped): their count. */
static inline __attribute__((always_inline)) int nonzero(const float *z, Py_ssize_t c, Py_ssize_t F,
                                                         Py_ssize_t nz[BLOCK]) {
    int m = 0;
    for (Py_ssize_t k = c; k < c + BLOCK && k < F; k++) {
        if (z[k] > 0.0f) {
            nz[m++] = k;
        }
    }
    return m;
}

static inline __attribute__((always_inline)) void relu_bias(float *mx, const float *bias, Py_ssize_t F) {
    for (Py_ssize_t f = 0; f < F; f++) {
        float v = mx[f] + bias[f];
        mx[f] = v > 0.0f ? v : 0.0f;
    }
}

/* relu(hid + bh) @ wo, summed as OpenBLAS sdot: acc[a][l] over chunks of 32, then halves, pairs, lanes */
static inline __attribute__((always_inline)) float out_dot(float *hid, const float *bh, const float *wo,
                                                           Py_ssize_t H) {
    float acc[4][8] = {{0.0f}};
    const Py_ssize_t H32 = H - H % 32;
    for (Py_ssize_t j = 0; j < H; j++) {
        float v = hid[j] + bh[j];
        hid[j] = v > 0.0f ? v : 0.0f;
    }
    for (Py_ssize_t j = 0; j < H32; j += 32) {
        for (int a = 0; a < 4; a++) {
            for (int l = 0; l < 8; l++) {
                acc[a][l] = fmaf(wo[j + 8 * a + l], hid[j + 8 * a + l], acc[a][l]);
            }
        }
    }
    float q[4][4], t[4];
    for (int a = 0; a < 4; a++) {
        for (int l = 0; l < 4; l++) {
            q[a][l] = acc[a][l] + acc[a][l + 4];
        }
    }
    for (int l = 0; l < 4; l++) {
        t[l] = (q[0][l] + q[1][l]) + (q[2][l] + q[3][l]);
    }
    float dot = (t[0] + t[1]) + (t[2] + t[3]);
    for (Py_ssize_t j = H32; j < H; j++) {
        dot = fmaf(wo[j], hid[j], dot);
    }
    return dot;
}

#if HAVE_AVX2_KERNEL
/* The kernel: eight outputs of the hidden layer per fused multiply-add (the AVX2 and FMA instructions
 * OpenBLAS's kernel uses; a CPU without them gets numpy, tutela/dns/charcnn.py). */
__attribute__((target("avx2,fma"))) static float forward(const float *table, const unsigned char *ids, Py_ssize_t n,
                                                         Py_ssize_t vocab, Py_ssize_t kmax, Py_ssize_t F,
                                                         Py_ssize_t H, const float *bias, const float *wh,
                                                         const float *bh, const float *wo, float *scratch) {
    float *z = scratch, *hid = scratch + F;
    Py_ssize_t nz[BLOCK];
    const Py_ssize_t H8 = H - H % 8;
    max_pool(table, ids, n, vocab, kmax, F, z);
    relu_bias(z, bias, F);
    for (Py_ssize_t j = 0; j < H; j++) {
        hid[j] = 0.0f;
    }
    for (Py_ssize_t c = 0; c < F; c += BLOCK) {
        int m = nonzero(z, c, F, nz);
        if (m == 0) {
            continue;
        }
        for (Py_ssize_t j = 0; j < H8; j += 8) {
            __m256 acc = _mm256_setzero_ps();
            for (int q = 0; q < m; q++) {
                __m256 w = _mm256_loadu_ps(wh + (size_t)nz[q] * (size_t)H + j);
                acc = _mm256_fmadd_ps(w, _mm256_set1_ps(z[nz[q]]), acc);
            }
            _mm256_storeu_ps(hid + j, _mm256_add_ps(_mm256_loadu_ps(hid + j), acc));
        }
        for (Py_ssize_t j = H8; j < H; j++) {
            float acc = 0.0f;
            for (int q = 0; q < m; q++) {
                acc = fmaf(wh[(size_t)nz[q] * (size_t)H + j], z[nz[q]], acc);
            }
            hid[j] += acc;
        }
    }
    return out_dot(hid, bh, wo, H);
}
#endif

static void release(Py_buffer *view) {
    if (view->obj != NULL) {
        PyBuffer_Release(view);
    }
}

static void Net_dealloc(Net *self) {
    release(&self->table);
    release(&self->bias);
    release(&self->w_hidden);
    release(&self->b_hidden);
    release(&self->w_out);
    PyMem_Free(self->scratch);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A C-contiguous float32 buffer of `ndim` dimensions: 0, or -1 with an exception set. */
static int get_floats(PyObject *obj, Py_buffer *view, int ndim, const char *name) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
        return -1;
    }
    const char *fmt = view->format != NULL ? view->format : "B";
    int is_float = view->itemsize == 4 && (strcmp(fmt, "f") == 0 || strcmp(fmt, "=f") == 0 ||
                                           strcmp(fmt, PY_LITTLE_ENDIAN ? "<f" : ">f") == 0);
    if (!is_float || view->ndim != ndim) {
        PyErr_Format(PyExc_ValueError, "%s must be a %d-D float32 array", name, ndim);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *Net_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"table", "bias", "w_hidden", "b_hidden", "w_out", "b_out", "kmax", NULL};
    PyObject *table, *bias, *w_hidden, *b_hidden, *w_out;
    float b_out;
    Py_ssize_t kmax;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOfn:Net", kwlist, &table, &bias, &w_hidden, &b_hidden,
                                     &w_out, &b_out, &kmax)) {
        return NULL;
    }
    if (!has_kernel) {
        PyErr_SetString(PyExc_RuntimeError, "this CPU lacks AVX2 or FMA: no kernel (use the numpy twin)");
        return NULL;
    }
    Net *self = (Net *)type->tp_alloc(type, 0); /* zeroed: unacquired buffers have obj == NULL */
    if (self == NULL) {
        return NULL;
    }
    self->b_out = b_out;
    if (get_floats(table, &self->table, 2, "table") < 0 || get_floats(bias, &self->bias, 1, "bias") < 0 ||
        get_floats(w_hidden, &self->w_hidden, 2, "w_hidden") < 0 ||
        get_floats(b_hidden, &self->b_hidden, 1, "b_hidden") < 0 || get_floats(w_out, &self->w_out, 1, "w_out") < 0) {
        Py_DECREF(self);
        return NULL;
    }
    Py_ssize_t rows = self->table.shape[0];
    self->filters = self->table.shape[1];
    self->hidden = self->w_hidden.shape[1];
    if (kmax < 1 || kmax > MAX_KMAX || rows % kmax != 0) {
        PyErr_SetString(PyExc_ValueError, "table rows are not kmax blocks of one vocabulary");
        Py_DECREF(self);
        return NULL;
    }
    self->kmax = kmax;
    self->vocab = rows / kmax;
    if (self->vocab < 1 || self->vocab > MAX_VOCAB || self->filters < 1 || self->hidden < 1 ||
        self->bias.shape[0] != self->filters || self->w_hidden.shape[0] != self->filters ||
        self->b_hidden.shape[0] != self->hidden || self->w_out.shape[0] != self->hidden) {
        PyErr_SetString(PyExc_ValueError, "the arrays' shapes do not fit together");
        Py_DECREF(self);
        return NULL;
    }
    /* the buffers' sizes bound filters and hidden, so filters + hidden floats cannot overflow */
    self->scratch = PyMem_Malloc((size_t)(self->filters + self->hidden) * sizeof(float));
    if (self->scratch == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static PyObject *Net_logit(Net *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    const unsigned char *ids = view.buf;
    const Py_ssize_t n = view.len;
    if (n < 1) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "a name has at least one token");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (ids[i] >= self->vocab) {
            int bad = ids[i];
            PyBuffer_Release(&view);
            return PyErr_Format(PyExc_ValueError, "token id %d is outside the vocabulary", bad);
        }
    }
#if HAVE_AVX2_KERNEL
    float dot = forward(self->table.buf, ids, n, self->vocab, self->kmax, self->filters, self->hidden,
                        self->bias.buf, self->w_hidden.buf, self->b_hidden.buf, self->w_out.buf, self->scratch);
#else
    float dot = 0.0f; /* unreachable: Net_new refuses to build a Net without the kernel */
#endif
    PyBuffer_Release(&view);
    return PyFloat_FromDouble((double)(dot + self->b_out));
}

static PyObject *Net_get_shape(Net *self, void *closure) {
    (void)closure;
    return Py_BuildValue("(nnnn)", self->kmax, self->vocab, self->filters, self->hidden);
}

static PyMethodDef Net_methods[] = {
    {"logit", (PyCFunction)Net_logit, METH_O, "logit(ids: bytes) -> float: the logit of one name's token ids."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Net_getset[] = {
    {"shape", (getter)Net_get_shape, NULL, "(kmax, vocab, filters, hidden)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject NetType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tutela._native.charcnn.Net",
    .tp_doc = PyDoc_STR("Net(table, bias, w_hidden, b_hidden, w_out, b_out, kmax): one character CNN's weights."),
    .tp_basicsize = sizeof(Net),
    .tp_itemsize = 0,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Net_new,
    .tp_dealloc = (destructor)Net_dealloc,
    .tp_methods = Net_methods,
    .tp_getset = Net_getset,
};

static struct PyModuleDef charcnn_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tutela._native.charcnn",
    .m_doc = PyDoc_STR("The character CNN's forward pass for one name (twin: tutela.dns.charcnn, numpy)."),
    .m_size = -1,
};

PyMODINIT_FUNC PyInit_charcnn(void) {
#if HAVE_AVX2_KERNEL
    __builtin_cpu_init();
    has_kernel = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    if (PyType_Ready(&NetType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&charcnn_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&NetType);
    if (PyModule_AddObject(m, "Net", (PyObject *)&NetType) < 0) {
        Py_DECREF(&NetType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddStringConstant(m, "KERNEL", has_kernel ? "avx2+fma" : "") < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
