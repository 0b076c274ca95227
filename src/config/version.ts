// The config format's version, apart from the schema so that readers of
// GardenOS's own state records need not load the schema library.
export const API_VERSION = 'gardenos.dev/v1alpha1';
