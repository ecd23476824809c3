/** `oidc-provider` ships no types; the tests use it through the narrow surface of openid-provider.ts. */
declare module 'oidc-provider';
