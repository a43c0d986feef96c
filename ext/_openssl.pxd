# OpenSSL's EVP digest interface, shared by the compiled kernels.
cdef extern from "openssl/evp.h" nogil:
    ctypedef struct EVP_MD:
        pass
    ctypedef struct EVP_MD_CTX:
        pass
    EVP_MD *EVP_MD_fetch(void *libctx, const char *algorithm, const char *properties)
    EVP_MD_CTX *EVP_MD_CTX_new()
    void EVP_MD_CTX_free(EVP_MD_CTX *ctx)
    int EVP_DigestInit_ex2(EVP_MD_CTX *ctx, const EVP_MD *md, const void *params)
    int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *data, size_t count)
    int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *size)
