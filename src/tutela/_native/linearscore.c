/* The fast injection tier's score of one text (tutela/runtime/features.py, LinearScorer.score_python), in C.
 *
 * The detector scores every window of every prompt, and in Python most of that time went into merging each
 * word's {gram: weight} dict into a per-window dict. Here every distinct gram and word pair gets an integer id
 * once, with its weight from the model's table; a window's distinct features are then found by stamping ids
 * with a per-call generation number, and their weights summed, in the order the Python dict first saw them:
 * each word's grams in order ("w:" + word[:40], then the 3-, 4- and 5-character windows of " word[:40] "),
 * words in order, then the word pairs ("b:a b") in order. Sequential double addition, as CPython 3.11's sum()
 * does, then bias + sum / sqrt(count) and the logistic: bit-identical to the twin on 3.11.
 *
 * Words are the matches of features._WORDS, [^\W_]+(?:'[^\W_]+)?: for a str pattern `[^\W_]` is exactly
 * Py_UNICODE_ISALNUM (sre's SRE_UNI_IS_ALNUM), so the same words are found (tests compare on every code point).
 *
 * Scorer(weights: dict, bias: float, words_max: int); Scorer.score(text: str, max_words: int) -> float.
 * The caches (word ids, gram ids, pair ids) are bounded: when one is over its bound at the start of a call, all
 * are cleared; the score never depends on them. Input is hostile: any str, any length; every C-API result is
 * checked and errors propagated; a weight that is not a float or int is a TypeError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define GRAM_CHARS 40            /* features._word_grams keeps word[:40] */
#define GRAMS_MAX (1 << 18)      /* distinct grams kept before the caches are cleared (~32 MB at most) */
#define PAIRS_MAX (1 << 17)      /* distinct word pairs kept before the caches are cleared (~5 MB table) */
#define WORDS_MAX_LIMIT 10000000 /* the largest words_max accepted (word ids fit in 32 bits) */

static PyObject *S_space, *S_w, *S_b;

typedef struct {
    PyObject_HEAD
    PyObject *weights;  /* dict: feature -> float */
    double bias;
    Py_ssize_t words_max;
    PyObject *word_ids; /* dict: word -> int (index into word_off / word_len) */
    PyObject *gram_ids; /* dict: gram -> int (index into gram_w / gram_stamp) */
    Py_ssize_t nwords, cap_words;
    Py_ssize_t *word_off; /* each word's grams: pool[word_off[i] .. word_off[i] + word_len[i]) */
    Py_ssize_t *word_len;
    int32_t *pool;
    Py_ssize_t npool, cap_pool;
    Py_ssize_t ngrams, cap_grams;
    double *gram_w;
    uint32_t *gram_stamp;
    Py_ssize_t npairs, cap_pairs; /* open addressing, cap_pairs a power of two, at most half full */
    uint64_t *pair_key;           /* (first word id + 1) << 32 | (second word id + 1); 0: empty */
    double *pair_w;
    uint32_t *pair_stamp;
    uint32_t gen;
    int busy;
} Scorer;

/* Grows one array, or two parallel ones (b: NULL for one), to hold `need` items; *cap is what both hold. */
static int grow(void **a, size_t size_a, void **b, size_t size_b, Py_ssize_t *cap, Py_ssize_t need) {
    if (need <= *cap) return 0;
    Py_ssize_t ncap = *cap ? *cap : 1024;
    while (ncap < need) ncap *= 2;
    void *na = PyMem_Realloc(*a, (size_t)ncap * size_a);
    if (na == NULL) goto fail;
    *a = na; /* larger than *cap says until b is too: safe */
    if (b != NULL) {
        void *nb = PyMem_Realloc(*b, (size_t)ncap * size_b);
        if (nb == NULL) goto fail;
        *b = nb;
    }
    *cap = ncap;
    return 0;
fail:
    PyErr_NoMemory();
    return -1;
}

/* A weight from the table: 0.0 where the feature is absent. */
static int lookup_weight(Scorer *self, PyObject *feature, double *out) {
    PyObject *v = PyDict_GetItemWithError(self->weights, feature);
    if (v == NULL) {
        if (PyErr_Occurred()) return -1;
        *out = 0.0;
        return 0;
    }
    if (PyFloat_CheckExact(v)) {
        *out = PyFloat_AS_DOUBLE(v);
        return 0;
    }
    if (!PyLong_CheckExact(v)) {
        PyErr_SetString(PyExc_TypeError, "a feature weight is not a float or int");
        return -1;
    }
    *out = PyLong_AsDouble(v);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

static int clear_caches(Scorer *self) {
    PyDict_Clear(self->word_ids);
    PyDict_Clear(self->gram_ids);
    self->nwords = self->npool = self->ngrams = self->npairs = 0;
    if (self->pair_key != NULL) memset(self->pair_key, 0, (size_t)self->cap_pairs * sizeof(uint64_t));
    return 0;
}

/* The id of one gram, added (with its weight) if new. */
static Py_ssize_t gram_id(Scorer *self, PyObject *gram) {
    PyObject *id = PyDict_GetItemWithError(self->gram_ids, gram);
    if (id != NULL) return PyLong_AsSsize_t(id);
    if (PyErr_Occurred()) return -1;
    double w;
    if (lookup_weight(self, gram, &w) < 0) return -1;
    Py_ssize_t g = self->ngrams;
    if (g >= INT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too many distinct grams in one text");
        return -1;
    }
    if (grow((void **)&self->gram_w, sizeof(double), (void **)&self->gram_stamp, sizeof(uint32_t), &self->cap_grams,
             g + 1) < 0)
        return -1;
    PyObject *v = PyLong_FromSsize_t(g);
    if (v == NULL) return -1;
    int rc = PyDict_SetItem(self->gram_ids, gram, v);
    Py_DECREF(v);
    if (rc < 0) return -1;
    self->gram_w[g] = w;
    self->gram_stamp[g] = 0;
    self->ngrams = g + 1;
    return g;
}

/* Appends `gram`'s id to the pool (steals the reference to `gram`). */
static int add_gram(Scorer *self, PyObject *gram) {
    if (gram == NULL) return -1;
    Py_ssize_t g = gram_id(self, gram);
    Py_DECREF(gram);
    if (g < 0) return -1;
    if (grow((void **)&self->pool, sizeof(int32_t), NULL, 0, &self->cap_pool, self->npool + 1) < 0) return -1;
    self->pool[self->npool++] = (int32_t)g;
    return 0;
}

/* A new word's grams, as features._word_grams makes them, into the pool; returns its id. */
static Py_ssize_t add_word(Scorer *self, PyObject *word) {
    Py_ssize_t id = self->nwords, off = self->npool;
    if (grow((void **)&self->word_off, sizeof(Py_ssize_t), (void **)&self->word_len, sizeof(Py_ssize_t),
             &self->cap_words, id + 1) < 0)
        return -1;
    Py_ssize_t len = PyUnicode_GET_LENGTH(word);
    PyObject *head = PyUnicode_Substring(word, 0, len < GRAM_CHARS ? len : GRAM_CHARS);
    if (head == NULL) return -1;
    PyObject *padded = NULL, *tmp = PyUnicode_Concat(S_space, head);
    if (tmp != NULL) {
        padded = PyUnicode_Concat(tmp, S_space);
        Py_DECREF(tmp);
    }
    int rc = padded == NULL ? -1 : add_gram(self, PyUnicode_Concat(S_w, head));
    Py_DECREF(head);
    if (rc == 0) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(padded);
        for (Py_ssize_t size = 3; size <= 5 && rc == 0; size++)
            for (Py_ssize_t i = 0; i + size <= n && rc == 0; i++)
                rc = add_gram(self, PyUnicode_Substring(padded, i, i + size));
    }
    Py_XDECREF(padded);
    if (rc < 0) return -1;
    PyObject *v = PyLong_FromSsize_t(id);
    if (v == NULL) return -1;
    rc = PyDict_SetItem(self->word_ids, word, v);
    Py_DECREF(v);
    if (rc < 0) return -1;
    self->word_off[id] = off;
    self->word_len[id] = self->npool - off;
    self->nwords = id + 1;
    return id;
}

static int pairs_resize(Scorer *self, Py_ssize_t cap) {
    uint64_t *keys = PyMem_Calloc((size_t)cap, sizeof(uint64_t));
    double *ws = PyMem_Malloc((size_t)cap * sizeof(double));
    uint32_t *st = PyMem_Malloc((size_t)cap * sizeof(uint32_t));
    if (keys == NULL || ws == NULL || st == NULL) {
        PyMem_Free(keys);
        PyMem_Free(ws);
        PyMem_Free(st);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < self->cap_pairs; i++) {
        uint64_t k = self->pair_key[i];
        if (k == 0) continue;
        size_t j = (size_t)((k * 0x9E3779B97F4A7C15ULL) >> 20) & (size_t)(cap - 1);
        while (keys[j] != 0) j = (j + 1) & (size_t)(cap - 1);
        keys[j] = k;
        ws[j] = self->pair_w[i];
        st[j] = self->pair_stamp[i];
    }
    PyMem_Free(self->pair_key);
    PyMem_Free(self->pair_w);
    PyMem_Free(self->pair_stamp);
    self->pair_key = keys;
    self->pair_w = ws;
    self->pair_stamp = st;
    self->cap_pairs = cap;
    return 0;
}

/* The slot of the pair (a, b), added with the weight of "b:" + words[a] + " " + words[b] if new. */
static Py_ssize_t pair_slot(Scorer *self, Py_ssize_t a, Py_ssize_t b, PyObject *wa, PyObject *wb) {
    if ((self->npairs + 1) * 2 > self->cap_pairs && pairs_resize(self, self->cap_pairs ? self->cap_pairs * 2 : 4096) < 0)
        return -1;
    uint64_t key = ((uint64_t)(a + 1) << 32) | (uint64_t)(b + 1);
    size_t mask = (size_t)(self->cap_pairs - 1);
    size_t j = (size_t)((key * 0x9E3779B97F4A7C15ULL) >> 20) & mask;
    while (self->pair_key[j] != 0) {
        if (self->pair_key[j] == key) return (Py_ssize_t)j;
        j = (j + 1) & mask;
    }
    PyObject *feature = PyUnicode_FromFormat("%U%U %U", S_b, wa, wb);
    if (feature == NULL) return -1;
    double w;
    int rc = lookup_weight(self, feature, &w);
    Py_DECREF(feature);
    if (rc < 0) return -1;
    self->pair_key[j] = key;
    self->pair_w[j] = w;
    self->pair_stamp[j] = 0;
    self->npairs++;
    return (Py_ssize_t)j;
}

static inline int is_alnum(Py_UCS4 c) {
    if (c < 128) return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
    return Py_UNICODE_ISALNUM(c);
}

/* The [start, end) of the matches of features._WORDS in text, at most `limit` of them; returns the count. */
static Py_ssize_t find_words(PyObject *text, Py_ssize_t limit, Py_ssize_t *spans) {
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), i = 0, count = 0;
    while (i < n && count < limit) {
        if (!is_alnum(PyUnicode_READ(kind, data, i))) {
            i++;
            continue;
        }
        Py_ssize_t a = i;
        while (i < n && is_alnum(PyUnicode_READ(kind, data, i))) i++;
        if (i + 1 < n && PyUnicode_READ(kind, data, i) == '\'' && is_alnum(PyUnicode_READ(kind, data, i + 1))) {
            i++;
            while (i < n && is_alnum(PyUnicode_READ(kind, data, i))) i++;
        }
        spans[2 * count] = a;
        spans[2 * count + 1] = i;
        count++;
    }
    return count;
}

static Py_ssize_t word_bound(PyObject *text, Py_ssize_t max_words) {
    Py_ssize_t most = PyUnicode_GET_LENGTH(text) / 2 + 1; /* words are separated: at most one per two chars */
    return max_words < most ? max_words : most;
}

static double logistic(double z) { return 1.0 / (1.0 + exp(-z)); }

static PyObject *score_words(Scorer *self, PyObject *text, Py_ssize_t max_words) {
    Py_ssize_t bound = word_bound(text, max_words);
    Py_ssize_t *spans = PyMem_Malloc((size_t)(2 * bound + 2) * sizeof(Py_ssize_t));
    Py_ssize_t *ids = PyMem_Malloc((size_t)(bound + 1) * sizeof(Py_ssize_t));
    PyObject **words = PyMem_Calloc((size_t)(bound + 1), sizeof(PyObject *));
    PyObject *result = NULL;
    Py_ssize_t nw = 0;
    if (spans == NULL || ids == NULL || words == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    nw = find_words(text, bound, spans);
    if (nw == 0) {
        result = PyFloat_FromDouble(logistic(self->bias));
        goto done;
    }
    if (self->nwords + nw > self->words_max || self->ngrams > GRAMS_MAX || self->npairs + nw > PAIRS_MAX)
        clear_caches(self);
    for (Py_ssize_t t = 0; t < nw; t++) {
        words[t] = PyUnicode_Substring(text, spans[2 * t], spans[2 * t + 1]);
        if (words[t] == NULL) goto done;
        PyObject *id = PyDict_GetItemWithError(self->word_ids, words[t]);
        if (id != NULL)
            ids[t] = PyLong_AsSsize_t(id);
        else if (PyErr_Occurred())
            goto done;
        else
            ids[t] = add_word(self, words[t]);
        if (ids[t] < 0) goto done;
    }
    if (++self->gen == 0) { /* wrapped: no stamp may equal a later generation by chance */
        if (self->cap_grams) memset(self->gram_stamp, 0, (size_t)self->cap_grams * sizeof(uint32_t));
        if (self->cap_pairs) memset(self->pair_stamp, 0, (size_t)self->cap_pairs * sizeof(uint32_t));
        self->gen = 1;
    }
    uint32_t gen = self->gen;
    double total = 0.0;
    Py_ssize_t count = 0;
    for (Py_ssize_t t = 0; t < nw; t++) {
        const int32_t *g = self->pool + self->word_off[ids[t]];
        for (Py_ssize_t k = 0, n = self->word_len[ids[t]]; k < n; k++) {
            if (self->gram_stamp[g[k]] != gen) {
                self->gram_stamp[g[k]] = gen;
                total += self->gram_w[g[k]];
                count++;
            }
        }
    }
    for (Py_ssize_t t = 1; t < nw; t++) {
        Py_ssize_t j = pair_slot(self, ids[t - 1], ids[t], words[t - 1], words[t]);
        if (j < 0) goto done;
        if (self->pair_stamp[j] != gen) {
            self->pair_stamp[j] = gen;
            total += self->pair_w[j];
            count++;
        }
    }
    double z = self->bias + total / sqrt((double)count);
    result = PyFloat_FromDouble(z < -30 ? 0.0 : logistic(z));
done:
    if (words != NULL)
        for (Py_ssize_t t = 0; t < nw; t++) Py_XDECREF(words[t]);
    PyMem_Free(words);
    PyMem_Free(ids);
    PyMem_Free(spans);
    return result;
}

static PyObject *Scorer_score(Scorer *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "score(text, max_words)");
        return NULL;
    }
    if (!PyUnicode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "text must be a str");
        return NULL;
    }
    Py_ssize_t max_words = PyLong_AsSsize_t(args[1]);
    if (max_words == -1 && PyErr_Occurred()) return NULL;
    if (max_words < 0) {
        PyErr_SetString(PyExc_ValueError, "max_words must be >= 0");
        return NULL;
    }
    if (self->busy) { /* only reachable from a finalizer run inside a call; the state is mid-update */
        PyErr_SetString(PyExc_RuntimeError, "Scorer.score re-entered");
        return NULL;
    }
    self->busy = 1;
    PyObject *result = score_words(self, args[0], max_words);
    self->busy = 0;
    return result;
}

static int Scorer_init(Scorer *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"weights", "bias", "words_max", NULL};
    PyObject *weights;
    double bias;
    Py_ssize_t words_max;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!dn", kwlist, &PyDict_Type, &weights, &bias, &words_max))
        return -1;
    if (words_max < 1 || words_max > WORDS_MAX_LIMIT) {
        PyErr_SetString(PyExc_ValueError, "words_max must be in 1..10000000");
        return -1;
    }
    if (self->word_ids != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Scorer is initialised once");
        return -1;
    }
    self->word_ids = PyDict_New();
    self->gram_ids = PyDict_New();
    if (self->word_ids == NULL || self->gram_ids == NULL) return -1;
    Py_INCREF(weights);
    self->weights = weights;
    self->bias = bias;
    self->words_max = words_max;
    return 0;
}

static int Scorer_traverse(Scorer *self, visitproc visit, void *arg) {
    Py_VISIT(self->weights);
    Py_VISIT(self->word_ids);
    Py_VISIT(self->gram_ids);
    return 0;
}

static int Scorer_clear(Scorer *self) {
    Py_CLEAR(self->weights);
    Py_CLEAR(self->word_ids);
    Py_CLEAR(self->gram_ids);
    return 0;
}

static void Scorer_dealloc(Scorer *self) {
    PyObject_GC_UnTrack(self);
    Scorer_clear(self);
    PyMem_Free(self->word_off);
    PyMem_Free(self->word_len);
    PyMem_Free(self->pool);
    PyMem_Free(self->gram_w);
    PyMem_Free(self->gram_stamp);
    PyMem_Free(self->pair_key);
    PyMem_Free(self->pair_w);
    PyMem_Free(self->pair_stamp);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Scorer_words(Scorer *self, PyObject *text) {
    (void)self;
    if (!PyUnicode_Check(text)) {
        PyErr_SetString(PyExc_TypeError, "text must be a str");
        return NULL;
    }
    Py_ssize_t bound = word_bound(text, PY_SSIZE_T_MAX);
    Py_ssize_t *spans = PyMem_Malloc((size_t)(2 * bound + 2) * sizeof(Py_ssize_t));
    if (spans == NULL) return PyErr_NoMemory();
    Py_ssize_t n = find_words(text, bound, spans);
    PyObject *out = PyList_New(n);
    for (Py_ssize_t t = 0; out != NULL && t < n; t++) {
        PyObject *w = PyUnicode_Substring(text, spans[2 * t], spans[2 * t + 1]);
        if (w == NULL) Py_CLEAR(out);
        else PyList_SET_ITEM(out, t, w);
    }
    PyMem_Free(spans);
    return out;
}

static PyMethodDef Scorer_methods[] = {
    {"score", (PyCFunction)(void (*)(void))Scorer_score, METH_FASTCALL,
     "score(text, max_words) -> float: LinearScorer.score_python's score, bit-identical on CPython 3.11."},
    {"words", (PyCFunction)Scorer_words, METH_O,
     "words(text) -> list[str]: the words score() reads (features._WORDS.findall(text)); for the tests."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScorerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tutela._native.linearscore.Scorer",
    .tp_basicsize = sizeof(Scorer),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Scorer(weights: dict, bias: float, words_max: int): the fast tier's linear score in C.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scorer_init,
    .tp_dealloc = (destructor)Scorer_dealloc,
    .tp_traverse = (traverseproc)Scorer_traverse,
    .tp_clear = (inquiry)Scorer_clear,
    .tp_methods = Scorer_methods,
};

static struct PyModuleDef moduledef = {PyModuleDef_HEAD_INIT, "linearscore",
                                       "The fast injection tier's score in C (twin: tutela.runtime.features).", -1,
                                       NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_linearscore(void) {
    if ((S_space == NULL && (S_space = PyUnicode_InternFromString(" ")) == NULL) ||
        (S_w == NULL && (S_w = PyUnicode_InternFromString("w:")) == NULL) ||
        (S_b == NULL && (S_b = PyUnicode_InternFromString("b:")) == NULL))
        return NULL;
    if (PyType_Ready(&ScorerType) < 0) return NULL;
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) return NULL;
    Py_INCREF(&ScorerType);
    if (PyModule_AddObject(m, "Scorer", (PyObject *)&ScorerType) < 0) {
        Py_DECREF(&ScorerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
