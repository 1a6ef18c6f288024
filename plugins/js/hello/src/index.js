// The smallest Guildhall plugin in JavaScript: greets the caller from the council it serves.
import { serve, text, context } from '../../sdk/index.js';

serve((req) => {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return text(405, 'use GET\n', { allow: 'GET, HEAD' });
  }
  return text(200, `Hello from ${context.council()} (${context.tenant()})!`);
});
