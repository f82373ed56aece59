/** cluster-key-slot (a dependency of ioredis): the Redis Cluster hash slot of a key, hash tags included. */
declare module "cluster-key-slot" {
  function calculateSlot(key: string | Buffer): number;
  export default calculateSlot;
}
