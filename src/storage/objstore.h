/*
 * objstore.h - the object-store interface every durable file goes through.
 *
 * Objects are named by '/'-separated relative paths ("collections/x.desc").
 * The interface is the small set of verbs S3 offers, so a later S3 backend
 * slots in behind the same calls.  This issue ships the local-filesystem
 * backend (objstore_local.c).
 *
 * Guarantees every backend gives:
 *  - put is atomic and durable: readers see the old object or the new one,
 *    never a mix, and after VL_OK the new one survives a crash.
 *  - put_if_absent never overwrites: VL_ERR_CONFLICT if the name exists.
 *  - list returns names in ascending byte order.
 */
#ifndef VL_STORAGE_OBJSTORE_H
#define VL_STORAGE_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "vexlake.h"

typedef struct vl_objstore vl_objstore;

typedef struct {
    char *name;    /**< relative object name, owned by the list */
    uint64_t size; /**< bytes */
} vl_objinfo;

typedef struct {
    vl_status (*put)(vl_objstore *s, const char *name, const void *data, size_t len, vl_error *err);
    vl_status (*put_if_absent)(vl_objstore *s, const char *name, const void *data, size_t len,
                               vl_error *err);
    /** *data is malloc'd (free() it); VL_ERR_NOTFOUND when absent. */
    vl_status (*get)(vl_objstore *s, const char *name, void **data, size_t *len, vl_error *err);
    /** Read up to len bytes at offset into buf; *got says how many. */
    vl_status (*get_range)(vl_objstore *s, const char *name, uint64_t offset, size_t len, void *buf,
                           size_t *got, vl_error *err);
    /** All objects whose name starts with prefix, sorted; free with vl_objinfo_free. */
    vl_status (*list)(vl_objstore *s, const char *prefix, vl_objinfo **out, size_t *n,
                      vl_error *err);
    /** VL_ERR_NOTFOUND when absent. */
    vl_status (*del)(vl_objstore *s, const char *name, vl_error *err);
    void (*close)(vl_objstore *s);
    /** Optional (NULL: use get): the whole object mapped read-only, valid
     *  until unmap(data, len) even if the object is deleted meanwhile
     *  (objects are never changed in place).  For backends whose objects
     *  are files: a large object is then read without a copy into fresh
     *  memory.  May fail where get would not (an empty object): callers
     *  fall back to get.  Used through vl_obj_read. */
    vl_status (*map)(vl_objstore *s, const char *name, const void **data, size_t *len,
                     vl_error *err);
    void (*unmap)(vl_objstore *s, const void *data, size_t len);
} vl_objstore_ops;

struct vl_objstore {
    const vl_objstore_ops *ops;
};

/** mkdir -p dir, each new directory made durable in its parent; 0 or -1
 *  with errno set. */
int vl_objstore_local_mkdirs(const char *dir);

/** 1 when name is a usable object name: not empty, no leading '/', no
 *  empty, "." or ".." component, no component containing ".tmp."
 *  (reserved for the local backend's temp files).  Every backend refuses
 *  other names with VL_ERR_ARG. */
int vl_objstore_name_valid(const char *name);

/** Open a local-directory store rooted at dir (created if missing). */
vl_status vl_objstore_local_open(const char *dir, vl_objstore **out, vl_error *err);

/** Free a list returned by ops->list. */
void vl_objinfo_free(vl_objinfo *list, size_t n);

/* Convenience wrappers, so callers read like sentences. */
static inline vl_status vl_obj_put(vl_objstore *s, const char *name, const void *d, size_t n,
                                   vl_error *err)
{
    return s->ops->put(s, name, d, n, err);
}
static inline vl_status vl_obj_put_if_absent(vl_objstore *s, const char *name, const void *d,
                                             size_t n, vl_error *err)
{
    return s->ops->put_if_absent(s, name, d, n, err);
}
static inline vl_status vl_obj_get(vl_objstore *s, const char *name, void **d, size_t *n,
                                   vl_error *err)
{
    return s->ops->get(s, name, d, n, err);
}
static inline vl_status vl_obj_get_range(vl_objstore *s, const char *name, uint64_t off, size_t n,
                                         void *buf, size_t *got, vl_error *err)
{
    return s->ops->get_range(s, name, off, n, buf, got, err);
}
/** A whole object for reading: mapped when the backend can (*mapped = 1),
 *  else fetched with get (*mapped = 0); hand all four back to
 *  vl_obj_release. */
static inline vl_status vl_obj_read(vl_objstore *s, const char *name, const void **d, size_t *n,
                                    int *mapped, vl_error *err)
{
    *mapped = 0;
    if (s->ops->map && s->ops->map(s, name, d, n, NULL) == VL_OK) {
        *mapped = 1;
        return VL_OK;
    }
    void *got;
    vl_status st = s->ops->get(s, name, &got, n, err);
    *d = st == VL_OK ? got : NULL;
    return st;
}
static inline void vl_obj_release(vl_objstore *s, const void *d, size_t n, int mapped)
{
    if (mapped)
        s->ops->unmap(s, d, n);
    else
        free((void *)d);
}
static inline vl_status vl_obj_list(vl_objstore *s, const char *prefix, vl_objinfo **out, size_t *n,
                                    vl_error *err)
{
    return s->ops->list(s, prefix, out, n, err);
}
static inline vl_status vl_obj_del(vl_objstore *s, const char *name, vl_error *err)
{
    return s->ops->del(s, name, err);
}
static inline void vl_obj_close(vl_objstore *s)
{
    if (s)
        s->ops->close(s);
}

#endif
