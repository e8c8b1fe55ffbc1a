/*
 * storage.h - the object store the server's flags ask for (--storage).
 */
#ifndef VL_SERVER_STORAGE_H
#define VL_SERVER_STORAGE_H

#include "server/server.h"
#include "storage/objstore.h"

/**
 * With --storage s3://bucket/prefix, open that S3 store (credentials from
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) into *out; without it *out is
 * NULL and the engine uses --dir.  The error names the cause (missing
 * bucket, refused credentials, unreachable endpoint) and never a secret.
 */
vl_status vl_server_open_store(const vl_config *cfg, vl_objstore **out, vl_error *err);

#endif
