/* tutela._native.dnsfeatures: the DNS models' per-name hot loops in C.
 *
 * Twins of pure-Python code that stays the reference (tests compare both, bit for bit):
 *   Tables.tunnel_features(sub)  ~ tutela.dns.lexical.Lexicon.tunnel_features  (ASCII names; None otherwise)
 *   Tables.dga_features(label, ...) ~ tutela.dns.lexical.Lexicon.dga_features   (ASCII labels; None otherwise)
 *   Trees.raw_one(x)             ~ tutela.dns.forest.Forest.raw_one (compiled evaluator)
 * Same float operations in the same order: sums run left to right from 0.0, ratios are one double
 * division of two exactly-converted integers (what Python's int / int gives for these sizes), and
 * entropy terms use libm's log2 as math.log2 does.
 *
 * Input is hostile: every index is bounds-checked, text is cut to MAX_LABEL before anything else,
 * buffers are sized from checked lengths, no recursion. Memory is owned by the objects and freed in
 * dealloc.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define MAX_LABEL 253 /* lexical.MAX_LABEL */
#define HEAD 64       /* tunnel_features reads the first 64 characters of the flat subdomain */
#define MIN_WORD 3    /* lexical.MIN_WORD */
#define MAX_ALPHABET 62
#define SEEN 0x80000000u
#define N_TUNNEL 15
#define N_DGA 22

/* A new list of floats from n doubles. */
static PyObject *float_list(const double *v, Py_ssize_t n) {
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *f = PyFloat_FromDouble(v[i]);
        if (f == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, f);
    }
    return out;
}

/* One type per C object: its methods, init and dealloc follow the <Prefix>_<slot> naming. */
#define NATIVE_TYPE(var, Prefix, name, doc)              \
    static PyTypeObject var = {                          \
        PyVarObject_HEAD_INIT(NULL, 0)                   \
        .tp_name = "tutela._native.dnsfeatures." name,   \
        .tp_doc = doc,                                   \
        .tp_basicsize = sizeof(Prefix),                  \
        .tp_flags = Py_TPFLAGS_DEFAULT,                  \
        .tp_new = PyType_GenericNew,                     \
        .tp_init = (initproc)Prefix##_init,              \
        .tp_dealloc = (destructor)Prefix##_dealloc,      \
        .tp_methods = Prefix##_methods,                  \
    }

/* ---------------------------------------------------------------------------------------------- */
/* Tables: the lexicon's trigram model and word trie                                              */

typedef struct {
    int32_t first; /* index of the first child; children are contiguous */
    uint8_t count; /* number of children (<= 128: ASCII) */
    uint8_t ch;    /* the byte on the edge into this node */
    uint8_t word;  /* the path to this node is a dictionary word */
    uint8_t pad;
} Node;

typedef struct {
    PyObject_HEAD
    uint8_t code[128];  /* ASCII byte -> alphabet code; `other` (K) for bytes no key uses */
    int dim;            /* K + 1 */
    uint32_t *tri;      /* dim^3 entries: SEEN flag | index into values */
    double *values;
    double *bigram;     /* dim^2 log-probabilities, bigram_unseen where unseen */
    Node *nodes;        /* trie, breadth-first: node 0 is the root */
    Py_ssize_t n_nodes;
} Tables;

/* A trie built with sibling lists, then laid out breadth-first with contiguous children. */
typedef struct {
    int32_t child, sibling;
    uint8_t ch, word;
} BuildNode;

typedef struct {
    BuildNode *v;
    Py_ssize_t n, cap;
} Build;

static Py_ssize_t build_add(Build *b, uint8_t ch) {
    if (b->n == b->cap) {
        Py_ssize_t cap = b->cap ? b->cap * 2 : 4096;
        if (cap > INT32_MAX) {
            PyErr_SetString(PyExc_ValueError, "word list too large");
            return -1;
        }
        BuildNode *v = PyMem_Realloc(b->v, (size_t)cap * sizeof(BuildNode));
        if (v == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n].child = -1;
    b->v[b->n].sibling = -1;
    b->v[b->n].ch = ch;
    b->v[b->n].word = 0;
    return b->n++;
}

static int build_insert(Build *b, const uint8_t *w, Py_ssize_t len) {
    Py_ssize_t node = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        Py_ssize_t c = b->v[node].child;
        while (c >= 0 && b->v[c].ch != w[i]) c = b->v[c].sibling;
        if (c < 0) {
            c = build_add(b, w[i]);
            if (c < 0) return -1;
            b->v[c].sibling = b->v[node].child;
            b->v[node].child = (int32_t)c;
        }
        node = c;
    }
    b->v[node].word = 1;
    return 0;
}

/* Breadth-first relabelling: a node's children get consecutive ids. */
static int build_finish(Tables *self, Build *b) {
    Py_ssize_t n = b->n;
    int32_t *order = PyMem_Malloc((size_t)n * sizeof(int32_t));
    Node *nodes = PyMem_Calloc((size_t)n, sizeof(Node));
    if (order == NULL || nodes == NULL) {
        PyMem_Free(order);
        PyMem_Free(nodes);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t next = 1;
    order[0] = 0;
    for (Py_ssize_t k = 0; k < next; k++) {
        BuildNode *src = &b->v[order[k]];
        nodes[k].first = (int32_t)next;
        nodes[k].ch = src->ch;
        nodes[k].word = src->word;
        int count = 0;
        for (Py_ssize_t c = src->child; c >= 0; c = b->v[c].sibling) {
            if (next >= n || count >= 255) { /* cannot happen for a tree of ASCII edges; never overrun */
                PyMem_Free(order);
                PyMem_Free(nodes);
                PyErr_SetString(PyExc_ValueError, "malformed word trie");
                return -1;
            }
            order[next++] = (int32_t)c;
            count++;
        }
        nodes[k].count = (uint8_t)count;
    }
    PyMem_Free(order);
    self->nodes = nodes;
    self->n_nodes = next;
    return 0;
}

static inline Py_ssize_t trie_child(const Tables *t, Py_ssize_t node, uint8_t ch) {
    const Node *nd = &t->nodes[node];
    Py_ssize_t end = (Py_ssize_t)nd->first + nd->count;
    for (Py_ssize_t k = nd->first; k < end; k++)
        if (t->nodes[k].ch == ch) return k;
    return -1;
}

/* ASCII bytes of a str, or NULL (no error set) when it is not ASCII. */
static const uint8_t *ascii_bytes(PyObject *s, Py_ssize_t *len) {
    if (!PyUnicode_Check(s) || !PyUnicode_IS_ASCII(s)) return NULL;
    *len = PyUnicode_GET_LENGTH(s);
    return (const uint8_t *)PyUnicode_DATA(s);
}

static int add_alphabet(Tables *self, PyObject *dict, Py_ssize_t keylen, int *k) {
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(dict, &pos, &key, &value)) {
        Py_ssize_t len;
        const uint8_t *s = ascii_bytes(key, &len);
        if (s == NULL) {
            if (!PyUnicode_Check(key)) {
                PyErr_SetString(PyExc_TypeError, "lexicon keys must be str");
                return -1;
            }
            continue; /* a non-ASCII key never matches ASCII text */
        }
        if (len != keylen) {
            PyErr_SetString(PyExc_ValueError, "lexicon key of unexpected length");
            return -1;
        }
        for (Py_ssize_t i = 0; i < len; i++) {
            if (self->code[s[i]] == 0xFF) {
                if (*k >= MAX_ALPHABET) {
                    PyErr_SetString(PyExc_ValueError, "lexicon alphabet too large for the dense table");
                    return -1;
                }
                self->code[s[i]] = (uint8_t)(*k)++;
            }
        }
    }
    return 0;
}

/* The next entry of a lexicon dict with an ASCII key (keys were checked by add_alphabet): 1, 0 at the end, -1 on
 * error. Non-ASCII keys are skipped: they never match ASCII text. */
static int next_ascii_entry(PyObject *dict, Py_ssize_t *pos, const uint8_t **key, double *value) {
    PyObject *k, *v;
    Py_ssize_t len;
    while (PyDict_Next(dict, pos, &k, &v)) {
        if (!PyFloat_CheckExact(v)) { /* Python would add ints exactly: only floats are laid out */
            PyErr_SetString(PyExc_TypeError, "lexicon values must be floats");
            return -1;
        }
        *key = ascii_bytes(k, &len);
        if (*key == NULL) continue;
        *value = PyFloat_AS_DOUBLE(v);
        return 1;
    }
    return 0;
}

static int Tables_init(Tables *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"trigram", "trigram_ctx_unseen", "trigram_unseen", "bigram", "bigram_unseen", "words",
                             NULL};
    PyObject *trigram, *ctx, *bigram, *words;
    double unseen, bigram_unseen;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!O!dO!dO", kwlist, &PyDict_Type, &trigram, &PyDict_Type, &ctx,
                                     &unseen, &PyDict_Type, &bigram, &bigram_unseen, &words))
        return -1;
    if (self->tri != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Tables is already initialised");
        return -1;
    }
    memset(self->code, 0xFF, sizeof(self->code));
    int k = 0;
    if (add_alphabet(self, trigram, 3, &k) < 0 || add_alphabet(self, ctx, 2, &k) < 0 ||
        add_alphabet(self, bigram, 2, &k) < 0)
        return -1;
    for (int i = 0; i < 128; i++)
        if (self->code[i] == 0xFF) self->code[i] = (uint8_t)k; /* other */
    int dim = k + 1;
    size_t cells = (size_t)dim * dim * dim;
    Py_ssize_t n_values = PyDict_Size(trigram) + PyDict_Size(ctx) + 1;
    uint32_t *tri = PyMem_Malloc(cells * sizeof(uint32_t));
    double *values = PyMem_Malloc((size_t)n_values * sizeof(double));
    uint32_t *ctx_at = PyMem_Malloc((size_t)dim * dim * sizeof(uint32_t));
    double *bi = PyMem_Malloc((size_t)dim * dim * sizeof(double));
    if (tri == NULL || values == NULL || ctx_at == NULL || bi == NULL) {
        PyMem_Free(tri);
        PyMem_Free(values);
        PyMem_Free(ctx_at);
        PyMem_Free(bi);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t nv = 0;
    values[nv] = unseen;
    for (size_t i = 0; i < (size_t)dim * dim; i++) ctx_at[i] = (uint32_t)nv;
    nv++;
    Py_ssize_t pos = 0, len;
    const uint8_t *s;
    double v;
    int rc;
    /* back-off first: an unseen trigram takes its two-character context's value, else trigram_unseen */
    while ((rc = next_ascii_entry(ctx, &pos, &s, &v)) > 0) {
        values[nv] = v;
        ctx_at[self->code[s[0]] * dim + self->code[s[1]]] = (uint32_t)nv++;
    }
    if (rc < 0) goto fail;
    for (int a = 0; a < dim; a++)
        for (int b = 0; b < dim; b++)
            for (int c = 0; c < dim; c++) tri[((size_t)a * dim + b) * dim + c] = ctx_at[a * dim + b];
    pos = 0;
    while ((rc = next_ascii_entry(trigram, &pos, &s, &v)) > 0) {
        values[nv] = v;
        tri[((size_t)self->code[s[0]] * dim + self->code[s[1]]) * dim + self->code[s[2]]] = SEEN | (uint32_t)nv++;
    }
    if (rc < 0) goto fail;
    PyMem_Free(ctx_at);
    ctx_at = NULL;
    for (size_t i = 0; i < (size_t)dim * dim; i++) bi[i] = bigram_unseen;
    pos = 0;
    while ((rc = next_ascii_entry(bigram, &pos, &s, &v)) > 0) bi[self->code[s[0]] * dim + self->code[s[1]]] = v;
    if (rc < 0) goto fail;

    Build b = {NULL, 0, 0};
    if (build_add(&b, 0) < 0) goto fail;
    PyObject *it = PyObject_GetIter(words);
    if (it == NULL) goto fail_build;
    PyObject *w;
    while ((w = PyIter_Next(it)) != NULL) {
        if (!PyUnicode_Check(w)) {
            Py_DECREF(w);
            Py_DECREF(it);
            PyErr_SetString(PyExc_TypeError, "words must be str");
            goto fail_build;
        }
        const uint8_t *word = ascii_bytes(w, &len);
        int added = 0;
        if (word != NULL && len >= MIN_WORD) added = build_insert(&b, word, len); /* non-ASCII words never match */
        Py_DECREF(w);
        if (added < 0) {
            Py_DECREF(it);
            goto fail_build;
        }
    }
    Py_DECREF(it);
    if (PyErr_Occurred() || build_finish(self, &b) < 0) goto fail_build;
    PyMem_Free(b.v);
    self->tri = tri;
    self->values = values;
    self->bigram = bi;
    self->dim = dim;
    return 0;

fail_build:
    PyMem_Free(b.v);
fail:
    PyMem_Free(tri);
    PyMem_Free(values);
    PyMem_Free(ctx_at);
    PyMem_Free(bi);
    return -1;
}

static void Tables_dealloc(Tables *self) {
    PyMem_Free(self->tri);
    PyMem_Free(self->values);
    PyMem_Free(self->bigram);
    PyMem_Free(self->nodes);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Sum of doubles as Python's sum() gives it: left to right from 0.0 (Neumaier-compensated from 3.12). */
typedef struct {
    double s, c;
} Sum;

static inline void sum_add(Sum *acc, double x) {
#if PY_VERSION_HEX >= 0x030C0000
    double t = acc->s + x;
    if (fabs(acc->s) >= fabs(x))
        acc->c += (acc->s - t) + x;
    else
        acc->c += (x - t) + acc->s;
    acc->s = t;
#else
    acc->s += x;
#endif
}

static inline double sum_value(const Sum *acc) {
#if PY_VERSION_HEX >= 0x030C0000
    if (acc->c != 0.0 && isfinite(acc->c)) return acc->s + acc->c;
#endif
    return acc->s;
}

/* Lexicon.coverage(text) for len <= HEAD. */
static double coverage(const Tables *t, const uint8_t *text, Py_ssize_t n) {
    int best[HEAD + 1];
    if (n <= 0 || n > HEAD) return 0.0; /* callers pass 1..HEAD characters */
    memset(best, 0, sizeof(best));
    int run = 0, any = 0;
    Py_ssize_t done = 0;
    for (Py_ssize_t i = 0; i + MIN_WORD <= n; i++) {
        /* a word can begin at i: the trie has a path for text[i:i+3] */
        Py_ssize_t node = 0;
        Py_ssize_t j = i;
        for (; j < i + MIN_WORD; j++) {
            node = trie_child(t, node, text[j]);
            if (node < 0) break;
        }
        if (node < 0) continue;
        any = 1;
        for (Py_ssize_t q = done; q <= i; q++)
            if (best[q] > run) run = best[q];
        done = i + 1;
        /* j == i + 3: the piece text[i:j] is a prefix; extend while it stays one */
        for (;;) {
            if (t->nodes[node].word && run + (int)(j - i) > best[j]) best[j] = run + (int)(j - i);
            if (j >= n) break;
            node = trie_child(t, node, text[j]);
            if (node < 0) break;
            j++;
        }
    }
    if (!any) return 0.0;
    int top = 0;
    for (Py_ssize_t q = 0; q <= n; q++)
        if (best[q] > top) top = best[q];
    return (double)top / (double)n;
}

/* Character classes of ASCII bytes. */
enum { C_OTHER = 0, C_VOWEL = 1, C_CONS = 2, C_DIGIT = 3, C_HYPHEN = 4 };
static uint8_t CLASS[256];
static uint8_t IS_HEX[256], IS_B32[256], IS_ALNUM[256];

static void init_classes(void) {
    for (int c = 'a'; c <= 'z'; c++) CLASS[c] = strchr("aeiou", c) ? C_VOWEL : C_CONS;
    for (int c = '0'; c <= '9'; c++) CLASS[c] = C_DIGIT;
    CLASS['-'] = C_HYPHEN;
    for (const char *p = "0123456789abcdef"; *p; p++) IS_HEX[(uint8_t)*p] = 1;
    for (const char *p = "abcdefghijklmnopqrstuvwxyz234567"; *p; p++) IS_B32[(uint8_t)*p] = 1;
    for (int c = 0; c < 128; c++) IS_ALNUM[c] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* One pass over ASCII text: character classes (lower-case letters only, as lexical's regexes and translates), the
 * longest consonant and digit runs, and the distinct characters in order of first occurrence. */
typedef struct {
    int counts[128];
    uint8_t order[128];
    int distinct, letters, vowels, digits, hyphens, cons_run, digit_run, hex_only, b32_only;
} Stats;

static void text_stats(const uint8_t *text, Py_ssize_t n, Stats *st) {
    memset(st, 0, sizeof(*st));
    st->hex_only = st->b32_only = 1;
    int cur_c = 0, cur_d = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint8_t ch = text[i] & 0x7F; /* ASCII already; the mask keeps every index in bounds */
        if (st->counts[ch]++ == 0) {
            st->order[st->distinct++] = ch;
            st->hex_only &= IS_HEX[ch];
            st->b32_only &= IS_B32[ch];
        }
        switch (CLASS[ch]) {
        case C_VOWEL: st->vowels++; st->letters++; cur_c = 0; cur_d = 0; break;
        case C_CONS: st->letters++; cur_d = 0; if (++cur_c > st->cons_run) st->cons_run = cur_c; break;
        case C_DIGIT: st->digits++; cur_c = 0; if (++cur_d > st->digit_run) st->digit_run = cur_d; break;
        case C_HYPHEN: st->hyphens++; cur_c = 0; cur_d = 0; break;
        default: cur_c = 0; cur_d = 0; break;
        }
    }
}

/* lexical.entropy: terms c/n * log2(c/n) summed in order of first occurrence, max(0.0, -sum). */
static double stats_entropy(const Stats *st, Py_ssize_t n) {
    if (n <= 0) return 0.0;
    Sum terms = {0.0, 0.0};
    for (int k = 0; k < st->distinct; k++) {
        double p = (double)st->counts[st->order[k]] / (double)n;
        sum_add(&terms, p * log2(p));
    }
    double neg = -sum_value(&terms);
    return neg > 0.0 ? neg : 0.0;
}

/* Trigrams of "^" + text + "$" in order (n >= 1): their log-probability sum, min(0.0, ...) and unseen count. */
static void trigrams(const Tables *t, const uint8_t *text, Py_ssize_t n, double *sum, double *min, int *unseen) {
    const int dim = t->dim;
    int prev2 = t->code['^'], prev1 = t->code[text[0] & 0x7F];
    Sum lps = {0.0, 0.0};
    double low = 0.0;
    int missing = 0;
    for (Py_ssize_t i = 1; i <= n; i++) {
        int c = t->code[i < n ? (text[i] & 0x7F) : '$'];
        uint32_t e = t->tri[((size_t)prev2 * dim + prev1) * dim + c];
        double lp = t->values[e & ~SEEN];
        if (!(e & SEEN)) missing++;
        sum_add(&lps, lp);
        if (lp < low) low = lp;
        prev2 = prev1;
        prev1 = c;
    }
    *sum = sum_value(&lps);
    *min = low;
    *unseen = missing;
}

/* Lexicon.bigram_mean: bigrams of "^" + text + "$" (n + 1 of them), the unseen ones at bigram_unseen. */
static double bigram_mean(const Tables *t, const uint8_t *text, Py_ssize_t n) {
    const int dim = t->dim;
    int prev = t->code['^'];
    Sum acc = {0.0, 0.0};
    for (Py_ssize_t i = 0; i <= n; i++) {
        int c = t->code[i < n ? (text[i] & 0x7F) : '$'];
        sum_add(&acc, t->bigram[prev * dim + c]);
        prev = c;
    }
    return sum_value(&acc) / (double)(n + 1);
}

/* Lexicon.segment for n <= MAX_LABEL: the best cover by words, ranked by (covered, fewer words) packed in one int. */
static void segment(const Tables *t, const uint8_t *text, Py_ssize_t n, double *cover, int *words, int *longest_word) {
    int key[MAX_LABEL + 1], longest[MAX_LABEL + 1];
    if (n <= 0 || n > MAX_LABEL) {
        *cover = 0.0;
        *words = *longest_word = 0;
        return;
    }
    const int span = (int)n + 1;
    for (Py_ssize_t i = 0; i <= n; i++) {
        key[i] = (int)n;
        longest[i] = 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int cur = key[i];
        if (cur > key[i + 1]) {
            key[i + 1] = cur;
            longest[i + 1] = longest[i];
        }
        Py_ssize_t node = 0, j = i;
        for (; j < i + MIN_WORD && j < n; j++) {
            node = trie_child(t, node, text[j]);
            if (node < 0) break;
        }
        if (node < 0 || j < i + MIN_WORD) continue;
        for (;;) { /* text[i:j] is a prefix of a word */
            if (t->nodes[node].word) {
                int cand = cur + (int)(j - i) * span - 1;
                if (cand > key[j]) {
                    key[j] = cand;
                    longest[j] = longest[i] > (int)(j - i) ? longest[i] : (int)(j - i);
                }
            }
            if (j >= n) break;
            node = trie_child(t, node, text[j]);
            if (node < 0) break;
            j++;
        }
    }
    int covered = key[n] / span, rest = key[n] % span;
    *cover = (double)covered / (double)n;
    *words = (int)n - rest;
    *longest_word = longest[n];
}

static int tables_ready(const Tables *self) {
    if (self->tri != NULL) return 1;
    PyErr_SetString(PyExc_RuntimeError, "Tables is not initialised");
    return 0;
}

static PyObject *Tables_tunnel_features(Tables *self, PyObject *arg) {
    if (!tables_ready(self)) return NULL;
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "tunnel_features() takes a str");
        return NULL;
    }
    Py_ssize_t len;
    const uint8_t *sub = ascii_bytes(arg, &len);
    if (sub == NULL) Py_RETURN_NONE; /* non-ASCII: the Python path */
    if (len > MAX_LABEL) len = MAX_LABEL;
    double f[N_TUNNEL];
    if (len == 0) {
        static const double none[N_TUNNEL] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 0};
        memcpy(f, none, sizeof(f));
        return float_list(f, N_TUNNEL);
    }
    uint8_t flat[MAX_LABEL];
    Py_ssize_t size = 0, dots = 0, label = 0, max_label = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        if (sub[i] == '.') {
            dots++;
            if (label > max_label) max_label = label;
            label = 0;
        } else {
            flat[size++] = sub[i];
            label++;
        }
    }
    if (label > max_label) max_label = label;
    Py_ssize_t n = size ? size : 1;
    Stats st;
    text_stats(flat, size, &st);
    double tri_mean = 0.0, tri_unseen = 0.0, cov = 1.0, ent = 0.0;
    if (size > 0) {
        Py_ssize_t head = size < HEAD ? size : HEAD;
        double sum, low;
        int unseen;
        trigrams(self, flat, head, &sum, &low, &unseen);
        tri_mean = sum / (double)head;
        tri_unseen = (double)unseen / (double)head;
        cov = coverage(self, flat, head);
        ent = stats_entropy(&st, size);
    } else {
        st.hex_only = st.b32_only = 0;
    }
    f[0] = (double)len;
    f[1] = (double)(dots + 1);
    f[2] = (double)max_label;
    f[3] = ent;
    f[4] = (double)st.digits / (double)n;
    f[5] = (double)(size - st.letters - st.digits - st.hyphens) / (double)n;
    f[6] = st.letters ? (double)st.vowels / (double)st.letters : 0.0;
    f[7] = tri_mean;
    f[8] = tri_unseen;
    f[9] = cov;
    f[10] = (double)st.digit_run;
    f[11] = (double)st.cons_run;
    f[12] = st.hex_only ? 1.0 : 0.0;
    f[13] = st.b32_only ? 1.0 : 0.0;
    f[14] = (double)st.distinct;
    return float_list(f, N_TUNNEL);
}

/* lexical.runs' switch count: positions where a lower-case letter meets a digit, in the text itself when it is all
 * ASCII letters and digits (upper case included, as str.isalnum), else in the text stripped to [a-z0-9]. */
static int switches(const uint8_t *text, Py_ssize_t n) {
    int all_alnum = 1;
    for (Py_ssize_t i = 0; i < n; i++) all_alnum &= IS_ALNUM[text[i] & 0x7F];
    int count = 0, prev = C_OTHER;
    for (Py_ssize_t i = 0; i < n; i++) {
        int c = CLASS[text[i] & 0x7F];
        int letter = c == C_VOWEL || c == C_CONS;
        if (!letter && c != C_DIGIT) {
            if (all_alnum) prev = C_OTHER; /* an upper-case letter stays in the text and breaks a pair */
            continue;                      /* else it is stripped: its neighbours meet */
        }
        int cls = letter ? C_VOWEL : C_DIGIT;
        if (prev != C_OTHER && prev != cls) count++;
        prev = cls;
    }
    return count;
}

static PyObject *Tables_dga_features(Tables *self, PyObject *args) {
    PyObject *arg;
    double suffix_labels, private_, logprior;
    if (!PyArg_ParseTuple(args, "Uddd", &arg, &suffix_labels, &private_, &logprior)) return NULL;
    if (!tables_ready(self)) return NULL;
    Py_ssize_t len;
    const uint8_t *label = ascii_bytes(arg, &len);
    if (label == NULL) Py_RETURN_NONE; /* non-ASCII: the Python path */
    if (len > MAX_LABEL) len = MAX_LABEL;
    Py_ssize_t n = len ? len : 1;
    Stats st;
    text_stats(label, len, &st);
    double tri_mean = 0.0, tri_min = 0.0, tri_unseen = 0.0;
    if (len > 0) {
        double sum;
        int unseen;
        trigrams(self, label, len, &sum, &tri_min, &unseen);
        tri_mean = sum / (double)len;
        tri_unseen = (double)unseen / (double)len;
    }
    uint8_t joined[MAX_LABEL]; /* label.replace("-", "") */
    Py_ssize_t m = 0;
    for (Py_ssize_t i = 0; i < len; i++)
        if (label[i] != '-') joined[m++] = label[i];
    double cover;
    int words, longest;
    segment(self, joined, m, &cover, &words, &longest);
    double f[N_DGA] = {
        (double)len,
        stats_entropy(&st, len),
        st.letters ? (double)st.vowels / (double)st.letters : 0.0,
        (double)st.digits / (double)n,
        (double)st.hyphens,
        (double)st.cons_run,
        (double)st.digit_run,
        (double)st.distinct / (double)n,
        tri_mean,
        tri_min,
        tri_unseen,
        bigram_mean(self, label, len),
        cover,
        (double)words,
        (double)longest,
        cover >= 0.999 ? 1.0 : 0.0,
        (double)switches(label, len),
        len > 0 && st.hex_only ? 1.0 : 0.0,
        suffix_labels,
        private_,
        logprior,
        len > 0 && CLASS[label[0] & 0x7F] == C_DIGIT ? 1.0 : 0.0,
    };
    return float_list(f, N_DGA);
}

static PyObject *Tables_coverage(Tables *self, PyObject *arg) {
    if (!tables_ready(self)) return NULL;
    Py_ssize_t len;
    const uint8_t *s = ascii_bytes(arg, &len);
    if (s == NULL || len > HEAD) Py_RETURN_NONE;
    if (len == 0) return PyFloat_FromDouble(0.0);
    return PyFloat_FromDouble(coverage(self, s, len));
}

static PyObject *Tables_size(Tables *self, PyObject *Py_UNUSED(ignored)) {
    return Py_BuildValue("(in)", self->dim, self->n_nodes);
}

static PyMethodDef Tables_methods[] = {
    {"tunnel_features", (PyCFunction)Tables_tunnel_features, METH_O,
     "Lexicon.tunnel_features(sub) for ASCII text (a list of 15 floats); None for non-ASCII text."},
    {"dga_features", (PyCFunction)Tables_dga_features, METH_VARARGS,
     "dga_features(label, suffix_labels, private, suffix_logprior): Lexicon.dga_features for an ASCII label (the "
     "suffix's three values as Python computes them); None for a non-ASCII label."},
    {"coverage", (PyCFunction)Tables_coverage, METH_O,
     "Lexicon.coverage(text) for ASCII text of at most 64 characters; None otherwise."},
    {"size", (PyCFunction)Tables_size, METH_NOARGS, "(alphabet size + 1, trie nodes)."},
    {NULL, NULL, 0, NULL},
};

NATIVE_TYPE(TablesType, Tables, "Tables",
            "Tables(trigram, trigram_ctx_unseen, trigram_unseen, bigram, bigram_unseen, words): the lexicon laid out for C.");

/* ---------------------------------------------------------------------------------------------- */
/* Trees: a validated forest as flat arrays                                                       */

typedef struct {
    PyObject_HEAD
    Py_ssize_t n_trees, num_class, num_features;
    Py_ssize_t *root;   /* per tree: offset of its first split node, or -1 for a single leaf */
    Py_ssize_t *leaf0;  /* per tree: offset of its first leaf */
    Py_ssize_t *nsplit; /* per tree: number of split nodes (a walk takes at most this many steps) */
    int *klass;
    int32_t *feature, *left, *right; /* per split node, children relative to the tree (<0: ~leaf) */
    double *threshold, *leaf;
} Trees;

static void Trees_free_arrays(Trees *t) {
    PyMem_Free(t->root);
    PyMem_Free(t->leaf0);
    PyMem_Free(t->nsplit);
    PyMem_Free(t->klass);
    PyMem_Free(t->feature);
    PyMem_Free(t->left);
    PyMem_Free(t->right);
    PyMem_Free(t->threshold);
    PyMem_Free(t->leaf);
    t->root = t->leaf0 = t->nsplit = NULL;
    t->klass = NULL;
    t->feature = t->left = t->right = NULL;
    t->threshold = t->leaf = NULL;
}

/* Items of a list of numbers, as long (ints) or double. */
static int read_longs(PyObject *seq, Py_ssize_t n, long *out) {
    for (Py_ssize_t i = 0; i < n; i++) {
        long v = PyLong_AsLong(PyList_GET_ITEM(seq, i));
        if (v == -1 && PyErr_Occurred()) return -1;
        out[i] = v;
    }
    return 0;
}

static PyObject *tree_list(PyObject *tree, const char *key, Py_ssize_t *n) {
    PyObject *v = PyDict_GetItemString(tree, key); /* borrowed */
    if (v == NULL || !PyList_Check(v)) {
        PyErr_Format(PyExc_ValueError, "tree without a list %s", key);
        return NULL;
    }
    *n = PyList_GET_SIZE(v);
    return v;
}

static int Trees_init(Trees *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"trees", "num_class", "num_features", NULL};
    PyObject *trees;
    Py_ssize_t num_class, num_features;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!nn", kwlist, &PyList_Type, &trees, &num_class, &num_features))
        return -1;
    if (self->root != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Trees is already initialised");
        return -1;
    }
    if (num_class < 1 || num_class > 4096 || num_features < 0) {
        PyErr_SetString(PyExc_ValueError, "bad num_class or num_features");
        return -1;
    }
    Py_ssize_t n_trees = PyList_GET_SIZE(trees), total_split = 0, total_leaf = 0, n;
    for (Py_ssize_t t = 0; t < n_trees; t++) {
        PyObject *tree = PyList_GET_ITEM(trees, t);
        if (!PyDict_Check(tree)) {
            PyErr_SetString(PyExc_TypeError, "a tree is a dict");
            return -1;
        }
        if (tree_list(tree, "split", &n) == NULL) return -1;
        total_split += n;
        if (tree_list(tree, "leaf", &n) == NULL) return -1;
        total_leaf += n;
    }
    self->n_trees = n_trees;
    self->num_class = num_class;
    self->num_features = num_features;
    size_t nt = (size_t)n_trees + 1, ns = (size_t)total_split + 1, nl = (size_t)total_leaf + 1;
    self->root = PyMem_Malloc(nt * sizeof(Py_ssize_t));
    self->leaf0 = PyMem_Malloc(nt * sizeof(Py_ssize_t));
    self->nsplit = PyMem_Malloc(nt * sizeof(Py_ssize_t));
    self->klass = PyMem_Malloc(nt * sizeof(int));
    self->feature = PyMem_Malloc(ns * sizeof(int32_t));
    self->left = PyMem_Malloc(ns * sizeof(int32_t));
    self->right = PyMem_Malloc(ns * sizeof(int32_t));
    self->threshold = PyMem_Malloc(ns * sizeof(double));
    self->leaf = PyMem_Malloc(nl * sizeof(double));
    long *tmp = PyMem_Malloc(ns * sizeof(long));
    if (!self->root || !self->leaf0 || !self->nsplit || !self->klass || !self->feature || !self->left ||
        !self->right || !self->threshold || !self->leaf || !tmp) {
        PyMem_Free(tmp);
        Trees_free_arrays(self);
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t so = 0, lo = 0;
    for (Py_ssize_t t = 0; t < n_trees; t++) {
        PyObject *tree = PyList_GET_ITEM(trees, t);
        Py_ssize_t k = 0, nthr = 0, nleft = 0, nright = 0, nleaf = 0;
        PyObject *split = tree_list(tree, "split", &k), *thr = tree_list(tree, "threshold", &nthr);
        PyObject *left = tree_list(tree, "left", &nleft), *right = tree_list(tree, "right", &nright);
        PyObject *leaf = tree_list(tree, "leaf", &nleaf);
        PyObject *klass = PyDict_GetItemString(tree, "class");
        if (!split || !thr || !left || !right || !leaf) goto fail;
        if (nthr != k || nleft != k || nright != k || nleaf != k + 1 || klass == NULL || so + k > total_split ||
            lo + k + 1 > total_leaf) { /* the last two: the lists changed since they were sized */
            PyErr_SetString(PyExc_ValueError, "inconsistent tree arrays");
            goto fail;
        }
        long c = PyLong_AsLong(klass);
        if (c == -1 && PyErr_Occurred()) goto fail;
        if (c < 0 || c >= num_class) {
            PyErr_SetString(PyExc_ValueError, "tree class out of range");
            goto fail;
        }
        self->klass[t] = (int)c;
        self->root[t] = k ? so : -1;
        self->leaf0[t] = lo;
        self->nsplit[t] = k;
        if (read_longs(split, k, tmp) < 0) goto fail;
        for (Py_ssize_t i = 0; i < k; i++) {
            if (tmp[i] < 0 || tmp[i] >= num_features) {
                PyErr_SetString(PyExc_ValueError, "split on unknown feature");
                goto fail;
            }
            self->feature[so + i] = (int32_t)tmp[i];
        }
        PyObject *children[2] = {left, right};
        int32_t *dest[2] = {self->left, self->right};
        for (int side = 0; side < 2; side++) {
            if (read_longs(children[side], k, tmp) < 0) goto fail;
            for (Py_ssize_t i = 0; i < k; i++) {
                long ch = tmp[i];
                if (!((ch >= 0 && ch < k) || (ch < 0 && ~ch < k + 1))) {
                    PyErr_SetString(PyExc_ValueError, "child out of range");
                    goto fail;
                }
                dest[side][so + i] = (int32_t)ch;
            }
        }
        for (Py_ssize_t i = 0; i < k; i++) {
            double v = PyFloat_AsDouble(PyList_GET_ITEM(thr, i));
            if (v == -1.0 && PyErr_Occurred()) goto fail;
            self->threshold[so + i] = v;
        }
        for (Py_ssize_t i = 0; i <= k; i++) {
            double v = PyFloat_AsDouble(PyList_GET_ITEM(leaf, i));
            if (v == -1.0 && PyErr_Occurred()) goto fail;
            self->leaf[lo + i] = v;
        }
        so += k;
        lo += k + 1;
    }
    PyMem_Free(tmp);
    return 0;
fail:
    PyMem_Free(tmp);
    Trees_free_arrays(self);
    return -1;
}

static void Trees_dealloc(Trees *self) {
    Trees_free_arrays(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Raw scores of one row: each class's leaves added in tree order from 0.0, as the compiled evaluator does.
 * Only a list of exact floats is taken (what the feature code gives); anything else returns None, so the caller
 * uses the Python evaluator and its comparison semantics. */
static PyObject *Trees_raw_one(Trees *self, PyObject *arg) {
    if (self->root == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Trees is not initialised");
        return NULL;
    }
    if (!PyList_Check(arg) || PyList_GET_SIZE(arg) != self->num_features) Py_RETURN_NONE;
    double xs[64];
    double *x = xs;
    if (self->num_features > 64) {
        x = PyMem_Malloc((size_t)self->num_features * sizeof(double));
        if (x == NULL) return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < self->num_features; i++) {
        PyObject *v = PyList_GET_ITEM(arg, i);
        if (!PyFloat_CheckExact(v)) {
            if (x != xs) PyMem_Free(x);
            Py_RETURN_NONE;
        }
        x[i] = PyFloat_AS_DOUBLE(v);
    }
    double sums_small[8];
    double *sums = sums_small;
    if (self->num_class > 8) {
        sums = PyMem_Malloc((size_t)self->num_class * sizeof(double));
        if (sums == NULL) {
            if (x != xs) PyMem_Free(x);
            return PyErr_NoMemory();
        }
    }
    for (Py_ssize_t k = 0; k < self->num_class; k++) sums[k] = 0.0;
    int cyclic = 0;
    for (Py_ssize_t t = 0; t < self->n_trees && !cyclic; t++) {
        Py_ssize_t base = self->root[t];
        int32_t node = base < 0 ? -1 : 0;
        Py_ssize_t steps = 0;
        while (node >= 0) {
            if (++steps > self->nsplit[t]) { /* a walk longer than the tree's splits: a cycle */
                cyclic = 1;
                break;
            }
            Py_ssize_t at = base + node;
            node = x[self->feature[at]] <= self->threshold[at] ? self->left[at] : self->right[at];
        }
        if (!cyclic) sums[self->klass[t]] += self->leaf[self->leaf0[t] + ~node];
    }
    if (x != xs) PyMem_Free(x);
    PyObject *out = NULL;
    if (cyclic)
        PyErr_SetString(PyExc_ValueError, "tree has a cycle");
    else
        out = float_list(sums, self->num_class);
    if (sums != sums_small) PyMem_Free(sums);
    return out;
}

static PyMethodDef Trees_methods[] = {
    {"raw_one", (PyCFunction)Trees_raw_one, METH_O,
     "Raw scores of one row (a list of floats, one per feature); None for any other input."},
    {NULL, NULL, 0, NULL},
};

NATIVE_TYPE(TreesType, Trees, "Trees", "Trees(trees, num_class, num_features): a validated forest's trees as flat arrays.");

/* ---------------------------------------------------------------------------------------------- */

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tutela._native.dnsfeatures",
    "C twins of tutela.dns.lexical (tunnel features) and tutela.dns.forest (one-row evaluation).", -1, NULL, NULL,
    NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_dnsfeatures(void) {
    init_classes();
    if (PyType_Ready(&TablesType) < 0 || PyType_Ready(&TreesType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Tables", (PyObject *)&TablesType) < 0 ||
        PyModule_AddObjectRef(m, "Trees", (PyObject *)&TreesType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
