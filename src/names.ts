// The names of the routes clients connect by, shared by every part that renders, drives or checks them:
// HAProxy's backends (the local profile and the hosts), the Kubernetes Services the router keeps, and
// the checks of `status`, `doctor` and the dashboard. A leaf module: it imports nothing.

/** The route to the leader: HAProxy's backend and the Kubernetes Service. */
export const PRIMARY_ROUTE = 'postgres-primary';
/** The route to healthy replicas: HAProxy's backend… */
export const REPLICAS_BACKEND = 'postgres-replicas';
/** …and the Kubernetes Service (singular there, as rendered since the first release; renaming would break clients). */
export const REPLICAS_SERVICE = 'postgres-replica';
/** The pooler in front of the primary route on the platform (pooler.enabled): the Kubernetes Service and its pods' Deployment. */
export const POOLER_SERVICE = 'postgres-pooler';
