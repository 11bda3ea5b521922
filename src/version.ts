// Written into the status annotation and the default sidecar image tag; kept in step with package.json by a test.
export const VERSION = '0.1.0';
