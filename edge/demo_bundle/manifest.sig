{
  "alg": "Ed25519",
  "key_id": "4ae7c21f5baa356f",
  "signature": "U/KwMw90e+0QIt3D94QS9mPnCKKwaSfm6WsAsdBF9byp4Guv2ukaVV5gSpq5AxFCOQb8jPgeIhIK2Jg3q481Bw=="
}
