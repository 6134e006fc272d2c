/* The few hot loops of Helios in C, each standing for a Python expression
 * that gives the same answer (the fallback when this does not build: no C
 * compiler or Python headers; setup.py). tests/unit/test_speedups.py holds
 * each to its Python twin.
 *
 * The BSD syslog fast pass's header scan (helios.parsing.layouts):
 * bsd_heads(text, n) and bsd_pri_heads(text, n) give exactly what
 *     RFC3164_FAST.findall(text)[:n]             (a list of bytes)
 *     RFC3164_FAST_PRI.findall(text)[:n]         (transposed: two lists)
 * give: one entry per line of text (lines end in "\n"; bytes after the last
 * one are a last line), b"" where a line is not of the canonical layout.
 * The regex spends most of its time walking each message to its line end
 * one byte at a time (".*") and making a tuple per line; this reads the
 * header and jumps to the line end with memchr. It is an accelerator, not a
 * second parser: the two give the same answer on real logs, public test
 * vectors and generated lines.
 *
 * The layout (see layouts._FAST_HEADER; every repetition in it is
 * possessive or cannot backtrack into a match, so one left-to-right read
 * decides):
 *     [<D{1,3}>] Mmm SP [ D]D SP DD:DD:DD SP+ host SP+ tag [ "[" pid "]" ] ":"
 * host: a run of non-white bytes that is not "20DD" followed by a space and
 * does not end in ":" or "]"; tag: a word of 1-48 bytes other than
 * " :[\n", then optionally one space and a second word of 1-24; pid: up to
 * 32 bytes other than "]". The head is from the month to the end of the tag.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static const char *MONTHS[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* \s of a bytes pattern: space, \t, \n, \v, \f, \r */
static inline int is_white(unsigned char c) {
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* [^ :\[\n] */
static inline int is_word(unsigned char c) {
    return c != ' ' && c != ':' && c != '[' && c != '\n';
}

/* The header at h (line end e): its end (the tag's end), or NULL. */
static const unsigned char *header(const unsigned char *h, const unsigned char *e) {
    const unsigned char *q, *s;
    int m, ok = 0;
    if (e - h < 16)
        return NULL;
    for (m = 0; m < 12; m++)
        if (h[0] == MONTHS[m][0] && h[1] == MONTHS[m][1] && h[2] == MONTHS[m][2]) {
            ok = 1;
            break;
        }
    if (!ok || h[3] != ' ' || !(h[4] == ' ' || is_digit(h[4])) || !is_digit(h[5]) || h[6] != ' ' ||
        !is_digit(h[7]) || !is_digit(h[8]) || h[9] != ':' || !is_digit(h[10]) || !is_digit(h[11]) ||
        h[12] != ':' || !is_digit(h[13]) || !is_digit(h[14]) || h[15] != ' ')
        return NULL;
    q = h + 15;
    while (q < e && *q == ' ')
        q++;
    /* (?!20\d\d ) */
    if (e - q >= 5 && q[0] == '2' && q[1] == '0' && is_digit(q[2]) && is_digit(q[3]) && q[4] == ' ')
        return NULL;
    s = q;
    while (q < e && !is_white(*q))
        q++;
    if (q == s || q[-1] == ':' || q[-1] == ']')
        return NULL;
    if (q >= e || *q != ' ')
        return NULL;
    while (q < e && *q == ' ')
        q++;
    /* the tag's first word */
    s = q;
    while (q < e && is_word(*q))
        q++;
    if (q == s || q - s > 48 || q >= e)
        return NULL;
    if (*q == ' ') {    /* a second word, then "[" or ":" must follow */
        s = ++q;
        while (q < e && is_word(*q))
            q++;
        if (q == s || q - s > 24 || q >= e || *q == ' ')
            return NULL;
    }
    /* here *q is ':' or '[' (or the line end, when q == e: not reached) */
    if (*q == ':')
        return q;
    if (*q == '[') {
        const unsigned char *r = q + 1;
        const unsigned char *lim = (e - r > 33) ? r + 33 : e;
        while (r < lim && *r != ']')
            r++;
        if (r < lim && *r == ']' && r - (q + 1) <= 32 && r + 1 < e && r[1] == ':')
            return q;
    }
    return NULL;
}

static PyObject *small_pri[4][1000];   /* [digits][value]: "7", "07", "007" are different bytes */

static PyObject *pri_bytes(const unsigned char *s, Py_ssize_t len) {
    int v = 0;
    Py_ssize_t i;
    PyObject *b;
    for (i = 0; i < len; i++)
        v = v * 10 + (s[i] - '0');
    b = small_pri[len][v];
    if (b == NULL) {
        b = PyBytes_FromStringAndSize((const char *)s, len);
        if (b == NULL)
            return NULL;
        small_pri[len][v] = b;   /* kept for the life of the process */
    }
    Py_INCREF(b);
    return b;
}

static PyObject *scan(PyObject *args, int with_pri) {
    Py_buffer view;
    Py_ssize_t n, count = 0;
    PyObject *heads = NULL, *pris = NULL, *empty = NULL, *result = NULL;
    const unsigned char *p, *end;
    if (!PyArg_ParseTuple(args, "y*n", &view, &n))
        return NULL;
    if (n < 0)
        n = 0;
    heads = PyList_New(n);
    if (heads == NULL)
        goto done;
    if (with_pri && (pris = PyList_New(n)) == NULL)
        goto done;
    empty = PyBytes_FromStringAndSize("", 0);
    if (empty == NULL)
        goto done;
    p = (const unsigned char *)view.buf;
    end = p + view.len;
    while (count < n) {
        const unsigned char *e = memchr(p, '\n', end - p);
        const unsigned char *h = p, *tag_end;
        const unsigned char *pri_s = NULL;
        Py_ssize_t pri_len = 0;
        PyObject *head, *pri;
        if (e == NULL)
            e = end;
        if (with_pri && h < e && *h == '<') {
            const unsigned char *d = h + 1;
            while (d < e && d - (h + 1) < 3 && is_digit(*d))
                d++;
            if (d > h + 1 && d < e && *d == '>') {
                pri_s = h + 1;
                pri_len = d - (h + 1);
                h = d + 1;
            }
        }
        tag_end = header(h, e);
        if (tag_end == NULL) {
            head = empty;
            Py_INCREF(head);
            pri = empty;
        } else {
            head = PyBytes_FromStringAndSize((const char *)h, tag_end - h);
            if (head == NULL)
                goto done;
            pri = pri_len ? NULL : empty;
        }
        PyList_SET_ITEM(heads, count, head);
        if (with_pri) {
            if (pri == NULL) {
                pri = pri_bytes(pri_s, pri_len);
                if (pri == NULL)
                    goto done;
            } else
                Py_INCREF(pri);
            PyList_SET_ITEM(pris, count, pri);
        }
        count++;
        if (e == end)
            break;
        p = e + 1;
    }
    if (count < n) {   /* fewer lines than n: the lists end there */
        if (PyList_SetSlice(heads, count, n, NULL) < 0 || (with_pri && PyList_SetSlice(pris, count, n, NULL) < 0))
            goto done;
    }
    result = with_pri ? PyTuple_Pack(2, pris, heads) : (Py_INCREF(heads), heads);
done:
    PyBuffer_Release(&view);
    Py_XDECREF(heads);
    Py_XDECREF(pris);
    Py_XDECREF(empty);
    return result;
}

static PyObject *longest_line(PyObject *self, PyObject *arg) {
    Py_buffer view;
    const char *p, *end, *e;
    Py_ssize_t longest = 0;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    p = (const char *)view.buf;
    end = p + view.len;
    for (;;) {
        e = memchr(p, '\n', end - p);
        if (e == NULL)
            e = end;
        if (e - p > longest)
            longest = e - p;
        if (e == end)
            break;
        p = e + 1;
    }
    PyBuffer_Release(&view);
    return PyLong_FromSsize_t(longest);
}

/* The syslog deframer's test (helios.syslognet.framing): does a line of
 * data[:end] other than the first start with a digit (an octet-counted
 * frame)? _DIGIT_AFTER_LF.search(data, 0, end) is not None. */
static PyObject *digit_after_newline(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t end;
    const char *p, *stop, *e;
    int found = 0;
    if (!PyArg_ParseTuple(args, "y*n", &view, &end))
        return NULL;
    if (end > view.len)
        end = view.len;
    p = (const char *)view.buf;
    stop = p + (end > 0 ? end : 0);
    while (p < stop && (e = memchr(p, '\n', stop - p)) != NULL) {
        if (e + 1 < stop && e[1] >= '0' && e[1] <= '9') {
            found = 1;
            break;
        }
        p = e + 1;
    }
    PyBuffer_Release(&view);
    return PyBool_FromLong(found);
}

static PyObject *bsd_heads(PyObject *self, PyObject *args) { return scan(args, 0); }
static PyObject *bsd_pri_heads(PyObject *self, PyObject *args) { return scan(args, 1); }

static PyMethodDef methods[] = {
    {"bsd_heads", bsd_heads, METH_VARARGS,
     "bsd_heads(text, n) -> the first n of RFC3164_FAST.findall(text): each line's header, or b\"\"."},
    {"bsd_pri_heads", bsd_pri_heads, METH_VARARGS,
     "bsd_pri_heads(text, n) -> (pris, heads): the first n of RFC3164_FAST_PRI.findall(text), as two lists."},
    {"digit_after_newline", digit_after_newline, METH_VARARGS,
     "digit_after_newline(data, end) -> does a newline in data[:end] come before a digit (in it)?"},
    {"longest_line", longest_line, METH_O, "longest_line(text) -> the length of its longest line (without the \\n)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedups",
                                    "The few hot loops of Helios in C (see the source).", -1, methods};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
