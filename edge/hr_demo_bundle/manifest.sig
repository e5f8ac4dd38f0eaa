{
  "alg": "Ed25519",
  "key_id": "4ae7c21f5baa356f",
  "signature": "DzJZG0th3h+AgN5wuwTAFrX3RoKxFfe/WgKcy/cxIIsyPBUTwyDrwbVCAfE/nypByfeZsz+Yz05gbvQ7f68wBg=="
}
