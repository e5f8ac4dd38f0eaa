{
  "alg": "Ed25519",
  "key_id": "4ae7c21f5baa356f",
  "signature": "QgPp/gFYgHoscyDga3Eq/ej9LHPO97nCrPI6l8yQMrkCrne9t1sfgwaZIFu8qp7jG3Z+6a+7RVm3juXCliHuAg=="
}
