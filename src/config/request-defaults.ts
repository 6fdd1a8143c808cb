/** What a request gets when its scheduler does not say: the request table's column defaults too. */
export const requestDefaults = Object.freeze({ tryLimit: 5, queue: 'default' });
