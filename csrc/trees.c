/*
 * trees.c -- one IR and one kernel for every tree model: decision trees,
 * random and extra forests, gradient boosting, histogram gradient boosting
 * and isolation forests.
 *
 * At load time each tree's nodes are laid out again in depth-first preorder,
 * 16 bytes a node, so that a left child is the next node and a walk reads
 * memory forwards; only leaves keep values.  The kernel walks a block of rows
 * through one tree at a time (the tree stays in cache) and adds each leaf's
 * values to the row's accumulator in tree order, which is the order
 * scikit-learn sums in.  What differs between the families -- averaging,
 * an initial value, which output column a tree feeds, the float32 cast of
 * scikit-learn's own trees -- is data in mf_forest, decided by the builders.
 */
#include "mlfast.h"
#include <math.h>
#include <string.h>

#define NODE_LEAF        0x80000000u
#define NODE_MISSING_LEFT 0x40000000u
#define NODE_CATEGORICAL 0x20000000u
#define NODE_FEATURE     ((uint32_t)MF_TREE_MAX_FEATURES)

/* A split on a set of categories as XGBoost and LightGBM make it: the
 * value's integer part (C's truncation) names a bit of the split's words;
 * values below the lowest category (XGBoost: any negative value, LightGBM:
 * whatever truncates below 0) and beyond the words are in no set.  XGBoost
 * sends the set right (common::Decision), LightGBM left
 * (Tree::CategoricalDecision); NaN goes the missing way before this. */
static inline int
set_split_left(const mf_forest *f, int64_t index, double v)
{
    const uint32_t *words = f->cat_words + f->cat_offsets[index];
    int64_t n_bits = (f->cat_offsets[index + 1] - f->cat_offsets[index]) * 32;
    int in_set = 0;
    int lgb = f->cat_rule == MF_CATS_LIGHTGBM;
    if (lgb ? v > -1.0 : v >= 0.0) {
        /* LightGBM's static_cast<int> of a value beyond int is INT_MIN on
         * x86 (negative: no category); both fit below 2^31 here */
        int64_t code = v < 2147483648.0 ? (int64_t)v : INT64_MAX;
        in_set = code < n_bits && ((words[code >> 5] >> (code & 31)) & 1u);
    }
    return lgb ? in_set : !in_set;
}

/* The general walk, for trees with categorical splits (and for any tree
 * when there is no memory for the padded copy of the rows).
 * Follows sklearn.ensemble._hist_gradient_boosting._predictor: NaN follows
 * missing_go_to_left; a categorical split sends a category in its bitset
 * left, a known category right, and negative or unknown values the missing
 * way.  Forests of XGBoost and LightGBM (cat_rule) use set_split_left. */
static inline int32_t
walk(const mf_tnode *tree, const double *x, const mf_forest *f)
{
    const mf_tnode *n = tree;
    const mf_catsplit *cats = f->splits;
    while (!(n->info & NODE_LEAF)) {
        double v = x[n->info & NODE_FEATURE];
        int left;
        if (isnan(v)) {
            left = (n->info & NODE_MISSING_LEFT) != 0;
        }
        else if ((n->info & NODE_CATEGORICAL) && f->cat_rule != 0) {
            left = set_split_left(f, (int64_t)n->threshold, v);
        }
        else if (n->info & NODE_CATEGORICAL) {
            const mf_catsplit *c = cats + (int64_t)n->threshold;
            if (v < 0.0) {
                left = (n->info & NODE_MISSING_LEFT) != 0;
            }
            else {
                /* scikit-learn casts the value to uint8 (X_BINNED_DTYPE_C) */
                unsigned int code = (unsigned char)(long long)(v < 9.2e18 ? v : 0.0);
                if ((c->left[code >> 5] >> (code & 31)) & 1u) {
                    left = 1;
                }
                else if ((c->known[code >> 5] >> (code & 31)) & 1u) {
                    left = 0;
                }
                else {
                    left = (n->info & NODE_MISSING_LEFT) != 0;
                }
            }
        }
        else {
            left = v <= n->threshold;
        }
        n = left ? n + 1 : tree + n->right;
    }
    return (int32_t)n->threshold;
}

/* Walks a group of rows (MF_WALK_GROUP of them, or a single row) through a
 * tree at once, without branches: a leaf is its own right child and splits
 * on a padding column that holds NaN (NaN <= t is false), so `depth` steps
 * bring every row to its leaf, and the rows' independent chains of loads
 * overlap instead of each waiting on a mispredicted branch (for a single
 * row, the walks of successive trees overlap the same way).  Numeric splits
 * only; `nan_aware` adds the missing-values rule, needed only when the rows
 * hold a NaN.  Callers pass `lanes` and `nan_aware` as constants, so each
 * case compiles to its own loop.
 *
 * The group's rows are stored feature-major (xg[j * lanes + g] is feature j
 * of row g), so every lane addresses its value from one base with a
 * constant offset: the eight walks then fit in registers instead of
 * spilling their state to the stack between steps. */
#define MF_WALK_GROUP 8

/* Tells the compiler a condition is a coin toss, so that it selects with a
 * conditional move instead of a branch (walks about 1.4x faster on x86-64
 * than with an AND/OR mask select, which in turn beat branches). */
#if defined(__has_builtin)
#if __has_builtin(__builtin_expect_with_probability)
#define MF_UNPREDICTABLE(cond) __builtin_expect_with_probability((cond), 1, 0.5)
#endif
#elif defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 9
#define MF_UNPREDICTABLE(cond) __builtin_expect_with_probability((cond), 1, 0.5)
#endif
#ifndef MF_UNPREDICTABLE
#define MF_UNPREDICTABLE(cond) (cond)
#endif

/* One step of every lane.  Returns the AND of the info words of the nodes
 * the rows stood on: its NODE_LEAF bit says every row was on its leaf. */
static inline __attribute__((always_inline)) uint32_t
walk_step(const mf_tnode *tree, const double *xg, int lanes, int nan_aware, int32_t *idx)
{
    int g;
    uint32_t all = NODE_LEAF;

    for (g = 0; g < lanes; g++) {
        const mf_tnode *n = tree + idx[g];
        uint32_t info = n->info;
        double v = xg[(Py_ssize_t)(info & NODE_FEATURE) * lanes + g];
        int go_left = v <= n->threshold;
        int32_t next = idx[g] + 1, right = n->right;
        if (nan_aware) {
            /* NaN fails both comparisons, so !(v > t) is "v <= t or
             * NaN"; the choice is made with a mask, as gcc turns a select
             * on this OR into branches (five times slower on rows with
             * NaN) */
            int32_t mask;
            go_left |= (int)((info >> 30) & 1u) & !(v > n->threshold);
            mask = -(int32_t)go_left;
            idx[g] = right ^ ((next ^ right) & mask);
        }
        else {
            /* both candidates computed first: this is what gcc turns into cmov */
            idx[g] = MF_UNPREDICTABLE(go_left) ? next : right;
        }
        all &= info;
    }
    return all;
}

/* A tree whose leaves all lie at about the same depth takes exactly its
 * depth in steps.  Otherwise (a best-first HistGradientBoosting tree of
 * depth 16 whose rows mostly stop at 6, a fully grown forest) the group
 * steps to the shallowest leaf, then on until all its rows stand on
 * leaves: the AND of the info words costs nothing beside the loads, and the
 * one branch a step is mostly predicted. */
static inline __attribute__((always_inline)) void
walk_group_as(const mf_tnode *tree, int32_t depth, int32_t shallow, const double *xg, int lanes,
              int nan_aware, int32_t *idx)
{
    int g;
    int32_t step;

    for (g = 0; g < lanes; g++) {
        idx[g] = 0;
    }
    if (depth - shallow <= 1) {
        for (step = 0; step < depth; step++) {
            walk_step(tree, xg, lanes, nan_aware, idx);
        }
    }
    else {
        for (step = 0; step < shallow; step++) {
            walk_step(tree, xg, lanes, nan_aware, idx);
        }
        for (; step < depth; step++) {
            if (walk_step(tree, xg, lanes, nan_aware, idx) & NODE_LEAF) {
                break;
            }
        }
    }
}

static void
walk_group(const mf_tnode *tree, int32_t depth, int32_t shallow, const double *xg, int nan_aware,
           int32_t *idx)
{
    if (nan_aware) {
        walk_group_as(tree, depth, shallow, xg, MF_WALK_GROUP, 1, idx);
    }
    else {
        walk_group_as(tree, depth, shallow, xg, MF_WALK_GROUP, 0, idx);
    }
}

static inline int32_t
walk_one(const mf_tnode *tree, int32_t depth, int32_t shallow, const double *xp, int nan_aware)
{
    int32_t idx;
    if (nan_aware) {
        walk_group_as(tree, depth, shallow, xp, 1, 1, &idx);
    }
    else {
        walk_group_as(tree, depth, shallow, xp, 1, 0, &idx);
    }
    return idx;
}

static inline void
add_leaf(const mf_forest *f, Py_ssize_t t, int32_t row, double *acc)
{
    const double *v = f->values + (Py_ssize_t)row * f->n_values;
    Py_ssize_t c;
    if (f->sum_f32) {
        for (c = 0; c < f->n_values; c++) {
            double *a = acc + (f->column != NULL ? f->column[t] : c);
            *a = (double)(float)(*a + v[c]);
        }
    }
    else if (f->column != NULL) {
        acc[f->column[t]] += v[0];
    }
    else {
        for (c = 0; c < f->n_values; c++) {
            acc[c] += v[c];
        }
    }
}

static void
forest_raw(const mf_forest *f, const double *x, Py_ssize_t n_rows, double *raw)
{
    Py_ssize_t r, c, t, j;
    Py_ssize_t n_raw = f->n_raw, d = f->n_features, padded = d + 1;
    /* whole groups walk in lockstep; the few rows left over (a single row,
     * the usual serving call) walk alone rather than pull 7 idle lanes */
    Py_ssize_t groups = n_rows / MF_WALK_GROUP, in_groups = groups * MF_WALK_GROUP;
    double stack_buf[4096];
    double *pad = NULL;
    int nan_seen = 0;

    for (r = 0; r < n_rows; r++) {
        for (c = 0; c < n_raw; c++) {
            raw[r * n_raw + c] = f->init != NULL ? f->init[c] : 0.0;
        }
    }
    if (f->splits == NULL && f->cat_rule == 0) {
        /* rows copied with the NaN padding column: whole groups
         * feature-major (group q at pad + q * MF_WALK_GROUP * padded), then
         * the rows left over one after the other; without the memory, the
         * general walk does it all */
        size_t need = (size_t)(n_rows * padded);
        pad =
            need <= sizeof(stack_buf) / sizeof(double) ? stack_buf : malloc(need * sizeof(double));
    }
    if (pad != NULL) {
        for (r = 0; r < n_rows; r++) {
            const double *src = x + r * d;
            Py_ssize_t lanes = r < in_groups ? MF_WALK_GROUP : 1;
            double *dst = r < in_groups ? pad + (r / MF_WALK_GROUP) * MF_WALK_GROUP * padded +
                                              r % MF_WALK_GROUP
                                        : pad + r * padded;
            for (j = 0; j < d; j++) {
                dst[j * lanes] = src[j];
                nan_seen |= src[j] != src[j];
            }
            dst[d * lanes] = NAN;
        }
    }
    for (t = 0; t < f->n_trees; t++) {
        const mf_tnode *tree = f->nodes + f->roots[t];
        int32_t depth = f->depths[2 * t], shallow = f->depths[2 * t + 1];
        if (pad == NULL) {
            for (r = 0; r < n_rows; r++) {
                add_leaf(f, t, walk(tree, x + r * d, f), raw + r * n_raw);
            }
            continue;
        }
        for (r = 0; r < in_groups; r += MF_WALK_GROUP) {
            int32_t idx[MF_WALK_GROUP];
            Py_ssize_t g;
            walk_group(tree, depth, shallow, pad + r * padded, nan_seen, idx);
            for (g = 0; g < MF_WALK_GROUP; g++) {
                add_leaf(f, t, (int32_t)tree[idx[g]].threshold, raw + (r + g) * n_raw);
            }
        }
        for (; r < n_rows; r++) {
            int32_t leaf = walk_one(tree, depth, shallow, pad + r * padded, nan_seen);
            add_leaf(f, t, (int32_t)tree[leaf].threshold, raw + r * n_raw);
        }
    }
    if (pad != NULL && pad != stack_buf) {
        free(pad);
    }
    if (f->average) {
        double n = (double)f->n_trees;
        for (r = 0; r < n_rows * n_raw; r++) {
            raw[r] /= n;
        }
    }
}

/* Checks the category sets of XGBoost's and LightGBM's splits (cat_rule):
 * offsets from 0 to the word count, never decreasing, and no set wider
 * than 2^24 categories (XGBoost's own limit); n_cats becomes their count,
 * which every categorical node's index is then checked against. */
static int
cat_sets_check(mf_forest *f)
{
    Py_ssize_t i;
    if (f->cat_rule == 0) {
        if (f->cat_words != NULL || f->cat_offsets != NULL) {
            PyErr_SetString(PyExc_ValueError, "forest: category sets without a rule");
            return -1;
        }
        return 0;
    }
    if ((f->cat_rule != MF_CATS_XGBOOST && f->cat_rule != MF_CATS_LIGHTGBM) || f->cats != NULL ||
        f->cat_offsets == NULL || f->n_cat_offsets < 1 || f->cat_offsets[0] != 0 ||
        f->cat_offsets[f->n_cat_offsets - 1] != f->n_cat_set_words) {
        PyErr_SetString(PyExc_ValueError, "forest: category sets malformed");
        return -1;
    }
    for (i = 1; i < f->n_cat_offsets; i++) {
        int64_t width = f->cat_offsets[i] - f->cat_offsets[i - 1];
        if (width < 0 || width > (1 << 19)) {
            PyErr_Format(mf_ModelFormatError, "invalid tree: category set %zd has %lld words",
                         i - 1, (long long)width);
            return -1;
        }
    }
    f->n_cats = f->n_cat_offsets - 1;
    return 0;
}

/* ---- construction ----------------------------------------------------------
 *
 * Input: per-node arrays of all trees concatenated (tree t owns nodes
 * [offsets[t], offsets[t+1])), children as indices within the tree (-1 for
 * a leaf), values per node.  Output: the preorder layout and the values of
 * the leaves only.  Everything read from a model file is checked here: child
 * indices, features, category split indices, and that every node is reached
 * once (a cycle or a shared child is an error, so every walk ends). */

static int
forest_build(mf_forest *f, mf_tnode *nodes, int64_t *roots, double *values, char *err,
             size_t err_size)
{
    Py_ssize_t t, n_nodes = f->n_node_rows, n_leaves = 0, out = 0;
    size_t cap = (size_t)(n_nodes > 0 ? n_nodes : 1);
    int64_t *stack = NULL, *pos = NULL, *old_right = NULL;
    int result = -1;

    stack = PyMem_Malloc((2 * cap + 2) * sizeof(int64_t));
    pos = PyMem_Malloc(cap * sizeof(int64_t));
    old_right = PyMem_Malloc(cap * sizeof(int64_t));
    if (stack == NULL || pos == NULL || old_right == NULL) {
        PyOS_snprintf(err, err_size, "out of memory");
        goto done;
    }
    for (t = 0; t < n_nodes; t++) {
        pos[t] = -1;
    }
    for (t = 0; t < f->n_trees; t++) {
        int64_t base = f->offsets[t], end = f->offsets[t + 1], size = end - base;
        Py_ssize_t top = 0, root = out, i;
        if (base < 0 || end <= base || end > n_nodes) {
            PyOS_snprintf(err, err_size, "tree %zd: node range [%lld, %lld) is invalid", t,
                          (long long)base, (long long)end);
            goto done;
        }
        roots[t] = root;
        stack[top++] = 0;
        while (top > 0) {
            int64_t local = stack[--top], id = base + local;
            int64_t l = f->left[id], r = f->right[id];
            mf_tnode *node = nodes + out;
            if (pos[id] >= 0) {
                PyOS_snprintf(err, err_size, "tree %zd: node %lld is reached twice", t,
                              (long long)local);
                goto done;
            }
            pos[id] = out - root;
            out++;
            if (l < 0) {
                /* a leaf keeps its values, whose row `threshold` holds; it
                 * is its own right child (see walk_group) */
                node->info = NODE_LEAF | (uint32_t)f->n_features;
                node->threshold = (double)n_leaves;
                node->right = (int32_t)(out - 1 - root);
                memcpy(values + n_leaves * f->n_values, f->node_values + id * f->n_values,
                       (size_t)f->n_values * sizeof(double));
                n_leaves++;
                continue;
            }
            if (l >= size || r < 0 || r >= size) {
                PyOS_snprintf(err, err_size,
                              "tree %zd: node %lld has children %lld and %lld "
                              "outside the tree's %lld nodes",
                              t, (long long)local, (long long)l, (long long)r, (long long)size);
                goto done;
            }
            if (f->feature[id] < 0 || f->feature[id] >= f->n_features) {
                PyOS_snprintf(err, err_size,
                              "tree %zd: node %lld splits on feature %lld "
                              "of %zd",
                              t, (long long)local, (long long)f->feature[id], f->n_features);
                goto done;
            }
            node->info = (uint32_t)f->feature[id];
            node->threshold = f->threshold[id];
            if (f->flags[id] & 1) {
                node->info |= NODE_MISSING_LEFT;
            }
            if (f->flags[id] & 2) {
                double ci = node->threshold;
                if (!(ci >= 0.0 && ci < (double)f->n_cats && ci == floor(ci))) {
                    PyOS_snprintf(err, err_size,
                                  "tree %zd: node %lld names category split "
                                  "%g of %zd",
                                  t, (long long)local, ci, f->n_cats);
                    goto done;
                }
                node->info |= NODE_CATEGORICAL;
            }
            old_right[out - 1] = base + r;
            /* right first, so the left child is emitted next: preorder */
            if (top + 2 > (Py_ssize_t)(2 * cap + 2)) {
                PyOS_snprintf(err, err_size, "tree %zd: more children than nodes", t);
                goto done;
            }
            stack[top++] = r;
            stack[top++] = l;
        }
        /* every right child now has a position */
        for (i = root; i < out; i++) {
            if (!(nodes[i].info & NODE_LEAF)) {
                nodes[i].right = (int32_t)pos[old_right[i]];
            }
        }
    }
    f->nodes = nodes;
    f->values = values;
    f->roots = roots;
    f->n_nodes = out;
    f->n_leaves = n_leaves;
    result = 0;
done:
    PyMem_Free(stack);
    PyMem_Free(pos);
    PyMem_Free(old_right);
    return result;
}

/* Checks a forest already in the packed layout (a pickled Model): every
 * walk must end, inside its tree, at a leaf with values. */
static int
forest_check_packed(const mf_forest *f, char *err, size_t err_size)
{
    Py_ssize_t t, i;
    for (t = 0; t < f->n_trees; t++) {
        int64_t root = f->roots[t];
        int64_t end = t + 1 < f->n_trees ? f->roots[t + 1] : f->n_nodes;
        if (root < 0 || end <= root || end > f->n_nodes || (t == 0 && root != 0)) {
            PyOS_snprintf(err, err_size, "tree %zd: bad node range", t);
            return -1;
        }
        for (i = root; i < end; i++) {
            const mf_tnode *n = f->nodes + i;
            int64_t local = i - root;
            if (n->info & NODE_LEAF) {
                if (n->info != (NODE_LEAF | (uint32_t)f->n_features) || n->right != local ||
                    !(n->threshold >= 0.0) || !(n->threshold < (double)f->n_leaves) ||
                    n->threshold != floor(n->threshold)) {
                    PyOS_snprintf(err, err_size, "tree %zd: leaf %lld is malformed", t,
                                  (long long)local);
                    return -1;
                }
                continue;
            }
            if ((Py_ssize_t)(n->info & NODE_FEATURE) >= f->n_features || local + 1 >= end - root ||
                n->right <= local || n->right >= end - root) {
                PyOS_snprintf(err, err_size, "tree %zd: node %lld is malformed", t,
                              (long long)local);
                return -1;
            }
            if ((n->info & NODE_CATEGORICAL) &&
                !(n->threshold >= 0.0 && n->threshold < (double)f->n_cats)) {
                PyOS_snprintf(err, err_size, "tree %zd: bad category split", t);
                return -1;
            }
        }
    }
    return 0;
}

/* The depths of each tree's deepest and shallowest leaves (depths[2t],
 * depths[2t + 1]), from the packed layout (children come after their
 * parent, so one forward pass sees every parent first). */
static int
forest_depths(mf_forest *f)
{
    Py_ssize_t t, i;
    int32_t *d = PyMem_Malloc((size_t)(f->n_nodes > 0 ? f->n_nodes : 1) * sizeof(int32_t));

    f->depths = PyMem_Malloc((size_t)(2 * f->n_trees) * sizeof(int32_t));
    if (d == NULL || f->depths == NULL) {
        PyMem_Free(d);
        PyErr_NoMemory();
        return -1;
    }
    f->steps = 0;
    for (t = 0; t < f->n_trees; t++) {
        int64_t root = f->roots[t];
        int64_t end = t + 1 < f->n_trees ? f->roots[t + 1] : f->n_nodes;
        int32_t deepest = 0, shallowest = INT32_MAX;
        d[root] = 0;
        for (i = root; i < end; i++) {
            const mf_tnode *n = f->nodes + i;
            if (n->info & NODE_LEAF) {
                if (d[i] > deepest) {
                    deepest = d[i];
                }
                if (d[i] < shallowest) {
                    shallowest = d[i];
                }
                continue;
            }
            d[i + 1] = d[i] + 1;
            d[root + n->right] = d[i] + 1;
        }
        f->depths[2 * t] = deepest;
        f->depths[2 * t + 1] = shallowest;
        f->steps += deepest;
    }
    PyMem_Free(d);
    return 0;
}

/* What the two forest ops share: the output columns, category splits,
 * initial values; then the depths. */
static int
forest_common(mf_forest *f, Py_ssize_t n_in, Py_ssize_t *n_out)
{
    Py_ssize_t t;
    if (f->n_features != n_in || f->n_features < 1 || f->n_features >= MF_TREE_MAX_FEATURES ||
        f->n_raw < 1) {
        PyErr_Format(PyExc_ValueError,
                     "forest: %zd features and %zd outputs for %zd input "
                     "columns",
                     f->n_features, f->n_raw, n_in);
        return -1;
    }
    if (f->column != NULL) {
        if (f->n_column != f->n_trees || f->n_values != 1) {
            PyErr_SetString(PyExc_ValueError, "forest: a tree feeding one column has one "
                                              "value, and every tree a column");
            return -1;
        }
        for (t = 0; t < f->n_trees; t++) {
            if (f->column[t] < 0 || f->column[t] >= f->n_raw) {
                PyErr_SetString(PyExc_ValueError, "forest: tree output column out of range");
                return -1;
            }
        }
    }
    else if (f->n_values != f->n_raw) {
        PyErr_SetString(PyExc_ValueError, "forest: leaf values must fill the outputs");
        return -1;
    }
    if (f->cats != NULL && f->n_cat_words != 16) {
        PyErr_SetString(PyExc_ValueError, "forest: category splits must be 16 words");
        return -1;
    }
    f->splits = (const mf_catsplit *)f->cats;
    if (f->cats == NULL && f->cat_rule == 0) {
        f->n_cats = 0;
    }
    if (f->init != NULL && f->n_init != f->n_raw) {
        PyErr_SetString(PyExc_ValueError, "forest: init must give each output a value");
        return -1;
    }
    *n_out = f->n_raw;
    return forest_depths(f);
}

/* Lays the per-node arrays out again into arrays the graph keeps (the
 * per-node arrays are transient: a forest costs only its packed nodes and
 * leaf values). */
static int
forest_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_forest *f = op;
    PyArrayObject *nodes_arr = NULL, *roots_arr = NULL, *values_arr = NULL;
    PyObject *nodes_used = NULL, *values_used = NULL;
    npy_intp dims[2];
    Py_ssize_t i, n_leaves = 0, n = f->n_node_rows;
    char err[256];
    int result = -1;

    if (f->n_offsets < 2 || f->n_left != n || f->n_right != n || f->n_feature != n ||
        f->n_threshold != n || f->n_flags != n || f->n_values < 1) {
        PyErr_SetString(PyExc_ValueError, "forest: per-node arrays of different lengths");
        return -1;
    }
    f->n_trees = f->n_offsets - 1;
    if (f->offsets[0] != 0 || f->offsets[f->n_trees] != n) {
        PyErr_SetString(PyExc_ValueError, "forest: offsets must run from 0 to the node count");
        return -1;
    }
    if (cat_sets_check(f) < 0) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        n_leaves += f->left[i] < 0;
    }
    dims[0] = n * (npy_intp)sizeof(mf_tnode);
    nodes_arr = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_UINT8);
    dims[0] = f->n_trees;
    roots_arr = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT64);
    dims[0] = n_leaves;
    dims[1] = f->n_values;
    values_arr = (PyArrayObject *)PyArray_SimpleNew(2, dims, NPY_DOUBLE);
    if (nodes_arr == NULL || roots_arr == NULL || values_arr == NULL) {
        goto done;
    }
    if (forest_build(f, (mf_tnode *)PyArray_DATA(nodes_arr), (int64_t *)PyArray_DATA(roots_arr),
                     (double *)PyArray_DATA(values_arr), err, sizeof(err)) < 0) {
        PyErr_Format(mf_ModelFormatError, "invalid tree: %s", err);
        goto done;
    }
    /* the per-node arrays are not kept: nothing may point into them */
    f->left = f->right = f->feature = f->offsets = NULL;
    f->threshold = f->node_values = NULL;
    f->flags = NULL;
    if (PyList_Append(owners, (PyObject *)nodes_arr) < 0 ||
        PyList_Append(owners, (PyObject *)roots_arr) < 0 ||
        PyList_Append(owners, (PyObject *)values_arr) < 0) {
        goto done;
    }
    /* unreachable nodes (none in scikit-learn's trees) are left out */
    nodes_used =
        PySequence_GetSlice((PyObject *)nodes_arr, 0, f->n_nodes * (Py_ssize_t)sizeof(mf_tnode));
    values_used = PySequence_GetSlice((PyObject *)values_arr, 0, f->n_leaves);
    if (nodes_used == NULL || values_used == NULL) {
        goto done;
    }
    f->packed = Py_BuildValue("(OOO)", nodes_used, roots_arr, values_used);
    if (f->packed == NULL) {
        goto done;
    }
    result = forest_common(f, n_in, n_out);
done:
    Py_XDECREF(nodes_used);
    Py_XDECREF(values_used);
    Py_XDECREF(nodes_arr);
    Py_XDECREF(roots_arr);
    Py_XDECREF(values_arr);
    return result;
}

/* The layout forest_prepare makes, as a pickled Model carries it: checked,
 * then used in place. */
static int
forest_packed_prepare(void *op, Py_ssize_t n_in, Py_ssize_t *n_out, PyObject *owners)
{
    mf_forest *f = op;
    char err[256];

    if (f->n_packed_bytes % (Py_ssize_t)sizeof(mf_tnode) != 0 || f->n_packed_roots < 1 ||
        f->n_packed_width < 1) {
        PyErr_SetString(PyExc_ValueError, "forest_packed: arrays malformed");
        return -1;
    }
    if (((uintptr_t)f->packed_nodes) % sizeof(double) != 0) {
        PyErr_SetString(PyExc_ValueError, "forest_packed: nodes are not aligned");
        return -1;
    }
    f->nodes = (const mf_tnode *)f->packed_nodes;
    f->n_nodes = f->n_packed_bytes / (Py_ssize_t)sizeof(mf_tnode);
    f->roots = f->packed_roots;
    f->n_trees = f->n_packed_roots;
    f->values = f->packed_values;
    f->n_leaves = f->n_packed_leaves;
    f->n_values = f->n_packed_width;
    if (f->n_features < 1 || f->n_features >= MF_TREE_MAX_FEATURES) {
        PyErr_SetString(PyExc_ValueError, "forest_packed: bad feature count");
        return -1;
    }
    f->n_cats = f->cats != NULL ? f->n_cats : 0;
    if (cat_sets_check(f) < 0) {
        return -1;
    }
    if (forest_check_packed(f, err, sizeof(err)) < 0) {
        PyErr_Format(mf_ModelFormatError, "invalid packed forest: %s", err);
        return -1;
    }
    return forest_common(f, n_in, n_out);
}

static void
forest_release(void *op)
{
    mf_forest *f = op;
    PyMem_Free(f->depths);
    f->depths = NULL;
    Py_CLEAR(f->packed);
}

static void
forest_run(const void *op, const double *in, Py_ssize_t n_in, double *out, Py_ssize_t n_out,
           Py_ssize_t n_rows, mf_precision prec)
{
    forest_raw(op, in, n_rows, out);
}

void
mf_forest_raw(const mf_forest *f, const double *x, Py_ssize_t n_rows, double *raw)
{
    forest_raw(f, x, n_rows, raw);
}

static int
forest_out_type(const void *op, int in_type)
{
    return NPY_DOUBLE;
}

/* a walk is a handful of dependent loads per level */
static void
forest_cost(const void *op, Py_ssize_t n_in, Py_ssize_t n_out, double *work, double *steps)
{
    const mf_forest *f = op;
    *work = (double)f->n_trees * (double)(8 + f->n_values);
    *steps = (double)f->steps;
}

static PyObject *
forest_made(const void *op)
{
    const mf_forest *f = op;
    PyObject *v = f->packed != NULL ? f->packed : Py_None;
    Py_INCREF(v);
    return v;
}

/* A forest larger than the caches is read from memory once per block:
 * blocks large enough that each tree's nodes serve many rows. */
static Py_ssize_t
forest_block_rows(const void *op)
{
    const mf_forest *f = op;
    if (f->n_nodes * (Py_ssize_t)sizeof(mf_tnode) +
            f->n_leaves * f->n_values * (Py_ssize_t)sizeof(double) >
        MF_FOREST_CACHE_BYTES) {
        return MF_BIG_BLOCK_ROWS;
    }
    return 0;
}

static const mf_field forest_fields[] = {
    MF_SCALAR_FIELD(mf_forest, n_features, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_forest, n_raw, MF_FIELD_INT),
    MF_VECTOR_FIELD(mf_forest, left, NPY_INT64, MF_FIELD_TRANSIENT, n_left),
    MF_VECTOR_FIELD(mf_forest, right, NPY_INT64, MF_FIELD_TRANSIENT, n_right),
    MF_VECTOR_FIELD(mf_forest, feature, NPY_INT64, MF_FIELD_TRANSIENT, n_feature),
    MF_VECTOR_FIELD(mf_forest, threshold, NPY_DOUBLE, MF_FIELD_TRANSIENT, n_threshold),
    MF_VECTOR_FIELD(mf_forest, flags, NPY_UINT8, MF_FIELD_TRANSIENT, n_flags),
    MF_MATRIX_FIELD(mf_forest, node_values, NPY_DOUBLE, MF_FIELD_TRANSIENT, n_node_rows, n_values),
    MF_VECTOR_FIELD(mf_forest, offsets, NPY_INT64, MF_FIELD_TRANSIENT, n_offsets),
    MF_VECTOR_FIELD(mf_forest, column, NPY_INT32, MF_FIELD_OPTIONAL, n_column),
    MF_MATRIX_FIELD(mf_forest, cats, NPY_UINT32, MF_FIELD_OPTIONAL, n_cats, n_cat_words),
    MF_VECTOR_FIELD(mf_forest, init, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_init),
    MF_SCALAR_FIELD(mf_forest, average, MF_FIELD_BOOL),
    MF_SCALAR_FIELD(mf_forest, sum_f32, MF_FIELD_BOOL),
    MF_VECTOR_FIELD(mf_forest, cat_words, NPY_UINT32, MF_FIELD_OPTIONAL, n_cat_set_words),
    MF_VECTOR_FIELD(mf_forest, cat_offsets, NPY_INT64, MF_FIELD_OPTIONAL, n_cat_offsets),
    MF_SCALAR_FIELD(mf_forest, cat_rule, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_forest = {
    .name = "forest",
    .size = sizeof(mf_forest),
    .fields = forest_fields,
    .prepare = forest_prepare,
    .release = forest_release,
    .run = forest_run,
    .out_type = forest_out_type,
    .cost = forest_cost,
    .made = forest_made,
    .block_rows = forest_block_rows,
};

static const mf_field forest_packed_fields[] = {
    MF_SCALAR_FIELD(mf_forest, n_features, MF_FIELD_INT),
    MF_SCALAR_FIELD(mf_forest, n_raw, MF_FIELD_INT),
    MF_VECTOR_FIELD(mf_forest, packed_nodes, NPY_UINT8, 0, n_packed_bytes),
    MF_VECTOR_FIELD(mf_forest, packed_roots, NPY_INT64, 0, n_packed_roots),
    MF_MATRIX_FIELD(mf_forest, packed_values, NPY_DOUBLE, 0, n_packed_leaves, n_packed_width),
    MF_VECTOR_FIELD(mf_forest, column, NPY_INT32, MF_FIELD_OPTIONAL, n_column),
    MF_MATRIX_FIELD(mf_forest, cats, NPY_UINT32, MF_FIELD_OPTIONAL, n_cats, n_cat_words),
    MF_VECTOR_FIELD(mf_forest, init, NPY_DOUBLE, MF_FIELD_OPTIONAL, n_init),
    MF_SCALAR_FIELD(mf_forest, average, MF_FIELD_BOOL),
    MF_SCALAR_FIELD(mf_forest, sum_f32, MF_FIELD_BOOL),
    MF_VECTOR_FIELD(mf_forest, cat_words, NPY_UINT32, MF_FIELD_OPTIONAL, n_cat_set_words),
    MF_VECTOR_FIELD(mf_forest, cat_offsets, NPY_INT64, MF_FIELD_OPTIONAL, n_cat_offsets),
    MF_SCALAR_FIELD(mf_forest, cat_rule, MF_FIELD_INT),
    MF_END_FIELDS,
};

const mf_op_def mf_op_forest_packed = {
    .name = "forest_packed",
    .size = sizeof(mf_forest),
    .fields = forest_packed_fields,
    .prepare = forest_packed_prepare,
    .release = forest_release,
    .run = forest_run,
    .out_type = forest_out_type,
    .cost = forest_cost,
    .made = forest_made,
    .block_rows = forest_block_rows,
};
