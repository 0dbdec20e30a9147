// The one place the version is written; package.json's is checked against it by a test.
export const QUORATE_VERSION = '0.1.0';
