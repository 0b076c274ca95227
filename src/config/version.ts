// The config format's version, apart from the schema so that readers of
// GardenOS's own state records need not load the schema library.
export const API_VERSION = 'gardenos.dev/v1alpha1';

/** The PostgreSQL majors GardenOS renders for, oldest first (the schema's postgres.version). */
export const SUPPORTED_POSTGRES = [15, 16, 17] as const;
