{
  "alg": "Ed25519",
  "key_id": "4ae7c21f5baa356f",
  "signature": "OMrd7Q+HSINIFwKmabww9GCRcmoJ7rNO29sCt5t8VTQNHLI+P1q4GI7Dao7h3NIihHgueUiynQ5vSlB45u0fDg=="
}
