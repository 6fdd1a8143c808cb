/** A TCP port on 127.0.0.1 that was free a moment ago (for servers the tests start): the package's own. */
export { freePort } from '../../dist/embedded/throwaway-server.js';
