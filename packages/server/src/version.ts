export { VERSION } from '@beacon/core';
